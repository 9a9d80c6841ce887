-- Helper gc_blobs: delete the channel blobs no remaining checkpoint of the namespace refers to.
local function gc_blobs(base, ns)
  local k = ns_keys(base, ns)
  local keep = {}
  for _, cid in ipairs(redis.call('ZRANGEBYLEX', k[1], '-', '+')) do
    local meta = redis.call('HGET', k[2], cid .. '\0r')
    if meta then
      local m = cmsgpack.unpack(meta)
      for i = 2, #m do keep[m[i]] = true end
    end
  end
  local dead = {}
  for _, f in ipairs(redis.call('HKEYS', k[3])) do
    if not keep[f] then table.insert(dead, f) end
  end
  if #dead > 0 then call_chunked('HDEL', k[3], dead, 500) end
end
