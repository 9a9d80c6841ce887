-- Helper keep_latest: keep only the newest checkpoint of every namespace of a thread (with
-- its writes and the blobs it refers to); drop the older ones, their writes and blobs.
local function keep_latest(base, ns_set, runs)
  for _, ns in ipairs(redis.call('SMEMBERS', ns_set)) do
    local k = ns_keys(base, ns)
    local latest = redis.call('ZREVRANGEBYLEX', k[1], '+', '-', 'LIMIT', 0, 1)[1]
    if latest then
      for _, cid in ipairs(redis.call('ZRANGEBYLEX', k[1], '-', '(' .. latest)) do
        drop_checkpoint(base, runs, ns, cid)
      end
      -- writes stored against checkpoints that were never put
      drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '-', '(' .. latest .. '\0'))
      drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '[' .. latest .. '\1', '+'))
      gc_blobs(base, ns)
    else
      redis.call('DEL', unpack(k))
      redis.call('SREM', ns_set, ns)
    end
  end
end
