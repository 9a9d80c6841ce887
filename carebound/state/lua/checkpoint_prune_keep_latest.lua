-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Keep only the newest checkpoint of every namespace.
-- KEYS: ns, runs
-- ARGV: key base
-- Reply: 1.
local base = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ns_keys(base, ns)
  local latest = redis.call('ZREVRANGEBYLEX', k[1], '+', '-', 'LIMIT', 0, 1)[1]
  if latest then
    for _, cid in ipairs(redis.call('ZRANGEBYLEX', k[1], '-', '(' .. latest)) do
      drop_checkpoint(base, KEYS[2], ns, cid)
    end
    -- writes stored against checkpoints that were never put
    drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '-', '(' .. latest .. '\0'))
    drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '[' .. latest .. '\1', '+'))
    gc_blobs(base, ns)
  else
    redis.call('DEL', unpack(k))
    redis.call('SREM', KEYS[1], ns)
  end
end
return 1
