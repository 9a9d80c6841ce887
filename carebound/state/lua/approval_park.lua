-- Create an approval record once (carebound.approvals).
-- KEYS: the approval record, the run's key registry (carebound.state.retention), the hold's
--       request (a key of its own: a value over hash-max-listpack-value would turn the whole
--       record into a hashtable, about twice its bytes)
-- ARGV: the record's suffix under the run's key base (registered, so retention finds it and
--       its request key), the request, then the record's field/value pairs
-- Reply: 1 created, 0 it existed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SET', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], '')
return 1
