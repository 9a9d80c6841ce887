-- Helper drop_checkpoint: delete one checkpoint, its run index member and its writes.
local function drop_checkpoint(base, runs, ns, cid)
  local k = ns_keys(base, ns)
  local meta = redis.call('HGET', k[2], cid .. '\0r')
  if meta then
    local run = cmsgpack.unpack(meta)[1]
    if run ~= '' then redis.call('ZREM', runs, run .. '\0' .. ns .. '\0' .. cid) end
  end
  redis.call('ZREM', k[1], cid)
  redis.call('HDEL', k[2], cid, cid .. '\0r')
  drop_writes(k, writes_of(k, cid))
end
