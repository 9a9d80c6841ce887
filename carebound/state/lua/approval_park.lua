-- Create an approval record once (carebound.approvals).
-- KEYS: the approval record
-- ARGV: field/value pairs
-- Reply: 1 created, 0 it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
