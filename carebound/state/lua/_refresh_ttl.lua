-- Helper refresh_ttl: set the thread's TTL (seconds; <= 0: none) on every key of it.
local function refresh_ttl(base, nsset, runs, ttl)
  if ttl <= 0 then return end
  redis.call('EXPIRE', nsset, ttl)
  redis.call('EXPIRE', runs, ttl)
  for _, ns in ipairs(redis.call('SMEMBERS', nsset)) do
    for _, k in ipairs(ns_keys(base, ns)) do redis.call('EXPIRE', k, ttl) end
  end
end
