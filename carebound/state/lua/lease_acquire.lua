-- Take (or extend our own) lease of a run (carebound.state.lease).
-- KEYS: lease[, guard hash]
-- ARGV: owner, ttl_ms[, guard field/value pairs]
-- Reply: {1, token, expires_ms} or {0, token, expires_ms}; {0, -1, 0} when the guard did not hold.
local now = now_ms()
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then return {0, -1, 0} end
end
local cur = redis.call('HMGET', KEYS[1], 'owner', 'token', 'expires_ms')
local expires = now + tonumber(ARGV[2])
if cur[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'expires_ms', string.format('%d', expires))
  return {1, tonumber(cur[2]), expires}
end
if cur[1] and tonumber(cur[3] or '0') > now then
  return {0, tonumber(cur[2] or '0'), tonumber(cur[3])}
end
local token = tonumber(cur[2] or '0') + 1  -- HINCRBY's, in the one HSET
redis.call('HSET', KEYS[1], 'token', string.format('%d', token), 'owner', ARGV[1],
           'expires_ms', string.format('%d', expires))
return {1, token, expires}
