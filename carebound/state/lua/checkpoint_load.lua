-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Read checkpoints with their blobs and pending writes.
-- KEYS: ids, rec, blob, w, wx, the thread's packed key (<base>pk, see pack_thread)
-- ARGV: cid ('' = take from the index), max lex bound ('+' or '(<cid>'), count
-- Reply: a list of {cid, record, meta, blob values, write fields, write values}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local raw = KEYS[6] and redis.call('GET', KEYS[6])
  if not raw then return {} end
  -- a packed thread: one checkpoint per namespace
  local ns = string.sub(KEYS[1], #KEYS[6] - 2 + 5)
  local entries = cmsgpack.unpack(raw)
  for i = 2, #entries do
    local e = entries[i]
    if e[1] == ns then
      local cid = e[2]
      local wanted
      if ARGV[1] ~= '' then
        wanted = cid == ARGV[1]
      else
        wanted = tonumber(ARGV[3]) > 0
          and (ARGV[2] == '+' or cid < string.sub(ARGV[2], 2))
      end
      if not wanted then return {} end
      local blobs = {}
      for j, v in ipairs(e[5]) do blobs[j] = v end
      return {{cid, e[3], e[4], blobs, e[6], e[7]}}
    end
  end
  return {}
end
local cids
if ARGV[1] ~= '' then
  cids = {ARGV[1]}
else
  cids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], '-', 'LIMIT', 0, tonumber(ARGV[3]))
end
local k = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}
local out = {}
for _, cid in ipairs(cids) do
  local rec = redis.call('HMGET', KEYS[2], cid, cid .. '\0r')
  if rec[1] then
    local meta = cmsgpack.unpack(rec[2])
    local blobs = {}
    if #meta > 1 then blobs = redis.call('HMGET', KEYS[3], unpack(meta, 2)) end
    local wf = writes_of(k, cid)
    local wv = {}
    if #wf > 0 then wv = redis.call('HMGET', KEYS[4], unpack(wf)) end
    table.insert(out, {cid, rec[1], rec[2], blobs, wf, wv})
  end
end
return out
