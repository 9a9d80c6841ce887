-- HSET (and HDEL) that runs only while a guard hash holds the expected values
-- (carebound.state.pipeline).
-- KEYS: the hash to write, the guard's hash (same hash slot)
-- ARGV: the number of guard pairs, the guard's field/value pairs, the number of fields to
--       delete, those fields, then the field/value pairs to set
-- Reply: 1 written, 0 refused.
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
local d = tonumber(ARGV[2 + 2 * n])
if d > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + 2 * n, 2 + 2 * n + d)) end
local values = {}
for i = 3 + 2 * n + d, #ARGV do values[#values + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(values))
return 1
