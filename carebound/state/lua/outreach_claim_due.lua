-- Claim the simulated outreach replies that are due (carebound.tools.connectors._outreach).
-- KEYS: due zset, items hash
-- ARGV: now (microseconds)
-- Reply: the claimed items.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local item = redis.call('HGET', KEYS[2], id)
    if item then out[#out + 1] = item end
  end
end
return out
