-- Give a lease up, keeping its token (carebound.state.lease).
-- KEYS: lease
-- ARGV: owner, token
-- Reply: 1 released, 0 not ours.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'token')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], 'owner', 'expires_ms')
return 1
