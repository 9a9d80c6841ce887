-- Helper pack_thread: fold a compacted thread (one checkpoint per namespace, only its writes
-- and the blobs it refers to) into one msgpack string at <base>pk, and delete its per-namespace
-- keys and namespace set: a parked run keeps one key where it kept six hashes and sets (each
-- hash with a value over 64 bytes in Redis's large encoding). unpack_thread reverses it before
-- any write; the load script reads it as it is. A thread in any other shape is left alone.
-- Packed shape: {version 1, {ns, cid, record, meta, blob values in meta's order (false: none),
-- write fields, write values}...}; the pk key takes the namespace set's TTL.
local function pack_thread(base, nsset)
  local entries = {1}
  local all = {nsset}
  for _, ns in ipairs(redis.call('SMEMBERS', nsset)) do
    local k = ns_keys(base, ns)
    local cids = redis.call('ZRANGE', k[1], 0, -1)
    if #cids ~= 1 or redis.call('HLEN', k[2]) ~= 2 then return false end
    local cid = cids[1]
    local rec = redis.call('HMGET', k[2], cid, cid .. '\0r')
    if not rec[1] or not rec[2] then return false end
    local refs = cmsgpack.unpack(rec[2])
    local blobs = {}
    if #refs > 1 then blobs = redis.call('HMGET', k[3], unpack(refs, 2)) end
    local found = 0
    for _, v in ipairs(blobs) do if v then found = found + 1 end end
    if found ~= redis.call('HLEN', k[3]) then return false end
    local wf = redis.call('ZRANGE', k[5], 0, -1)
    if #wf ~= redis.call('HLEN', k[4]) then return false end
    local wv = {}
    if #wf > 0 then wv = redis.call('HMGET', k[4], unpack(wf)) end
    for _, v in ipairs(wv) do if not v then return false end end
    table.insert(entries, {ns, cid, rec[1], rec[2], blobs, wf, wv})
    for _, key in ipairs(k) do table.insert(all, key) end
  end
  if #entries == 1 then return false end
  store_pack(base, nsset, entries, all)
  return true
end
