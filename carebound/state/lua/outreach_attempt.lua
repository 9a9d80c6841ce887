-- Number one send of an outreach request (carebound.state.outreach).
-- KEYS: the run's request-attempt counters (hash), the run's attempt-of-send hash
-- ARGV: request id, idempotency key
-- Reply: the attempt number of this send: the one given before for the same key, else the
-- request's next number.
local known = redis.call('HGET', KEYS[2], ARGV[2])
if known then return tonumber(known) end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], ARGV[2], n)
return n
