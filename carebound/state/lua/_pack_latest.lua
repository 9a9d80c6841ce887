-- Helper pack_latest: keep_latest then pack_thread in one pass, for a thread whose every
-- namespace has a checkpoint: the newest checkpoint of each namespace, its writes and the blobs
-- it refers to are read and packed, and the per-namespace keys deleted whole, without first
-- deleting the superseded checkpoints, their writes and unreferenced blobs field by field (which
-- the delete then made moot). The packed value is the one the two steps write. Superseded
-- checkpoints' members of the run index are removed as drop_checkpoint removes them. Returns
-- false, having written nothing, for a thread it does not pack (a namespace without a
-- checkpoint, a write whose value is missing): the caller falls back to the two steps.
local function pack_latest(base, nsset, runs)
  local entries = {1}
  local all = {nsset}
  local stale = {}
  for _, ns in ipairs(redis.call('SMEMBERS', nsset)) do
    local k = ns_keys(base, ns)
    local cids = redis.call('ZRANGE', k[1], 0, -1)
    local cid = cids[#cids]
    if not cid then return false end
    local rec = redis.call('HMGET', k[2], cid, cid .. '\0r')
    if not rec[1] or not rec[2] then return false end
    local refs = cmsgpack.unpack(rec[2])
    local blobs = {}
    if #refs > 1 then blobs = redis.call('HMGET', k[3], unpack(refs, 2)) end
    local wf = writes_of(k, cid)
    local wv = {}
    if #wf > 0 then wv = redis.call('HMGET', k[4], unpack(wf)) end
    for _, v in ipairs(wv) do if not v then return false end end
    if #cids > 1 then
      local older = {}
      for i = 1, #cids - 1 do older[i] = cids[i] .. '\0r' end
      local metas = redis.call('HMGET', k[2], unpack(older))
      for i, meta in ipairs(metas) do
        if meta then
          local run = cmsgpack.unpack(meta)[1]
          if run ~= '' then table.insert(stale, run .. '\0' .. ns .. '\0' .. cids[i]) end
        end
      end
    end
    table.insert(entries, {ns, cid, rec[1], rec[2], blobs, wf, wv})
    for _, key in ipairs(k) do table.insert(all, key) end
  end
  if #entries == 1 then return false end
  if #stale > 0 then call_chunked('ZREM', runs, stale, 500) end
  store_pack(base, nsset, entries, all)
  return true
end
