-- Helper keep_packed: write a packed thread's entries back to <base>pk, keeping its TTL, or
-- setting ttl seconds on it and on the runs index when ttl > 0 (as refresh_ttl does unpacked).
local function keep_packed(base, runs, entries, ttl)
  local pk = base .. 'pk'
  redis.call('SET', pk, cmsgpack.pack(entries), 'KEEPTTL')
  if ttl > 0 then
    redis.call('EXPIRE', pk, ttl)
    redis.call('EXPIRE', runs, ttl)
  end
end
