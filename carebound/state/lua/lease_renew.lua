-- Extend a lease we hold (carebound.state.lease).
-- KEYS: lease
-- ARGV: owner, token, ttl_ms
-- Reply: the new expires_ms, or 0 if not ours.
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'owner', 'token')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
local expires = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expires_ms', string.format('%d', expires))
return expires
