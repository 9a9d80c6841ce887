-- Helper unpack_thread: write a thread packed by pack_thread back as its per-namespace keys
-- (with the packed key's TTL) and delete the packed key; nothing when the thread is not packed.
local function unpack_thread(base, nsset)
  local pk = base .. 'pk'
  local raw = redis.call('GET', pk)
  if not raw then return end
  local ttl = redis.call('PTTL', pk)
  local entries = cmsgpack.unpack(raw)
  local touched = {nsset}
  for i = 2, #entries do
    local ns, cid, rec, meta, blobs, wf, wv = unpack(entries[i])
    local k = ns_keys(base, ns)
    redis.call('SADD', nsset, ns)
    redis.call('ZADD', k[1], 0, cid)
    redis.call('HSET', k[2], cid, rec, cid .. '\0r', meta)
    local refs = cmsgpack.unpack(meta)
    local pairs_ = {}
    for j, v in ipairs(blobs) do
      if v then
        table.insert(pairs_, refs[j + 1])
        table.insert(pairs_, v)
      end
    end
    if #pairs_ > 0 then call_chunked('HSET', k[3], pairs_, 400) end
    if #wf > 0 then
      local wpairs, index = {}, {}
      for j, f in ipairs(wf) do
        table.insert(wpairs, f)
        table.insert(wpairs, wv[j])
        table.insert(index, 0)
        table.insert(index, f)
      end
      call_chunked('HSET', k[4], wpairs, 400)
      call_chunked('ZADD', k[5], index, 400)
    end
    for _, key in ipairs(k) do table.insert(touched, key) end
  end
  redis.call('DEL', pk)
  if ttl > 0 then
    for _, key in ipairs(touched) do redis.call('PEXPIRE', key, ttl) end
  end
end
