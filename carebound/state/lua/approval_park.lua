-- Create an approval record once (carebound.approvals).
-- KEYS: the approval record, the run's key registry (its run hash: carebound.state.keys), the hold's
--       request (a key of its own: a value over hash-max-listpack-value would turn the whole
--       record into a hashtable, about twice its bytes)
-- ARGV: the record's suffix under the run's key base (registered, so retention finds it and
--       its request key), the request, then the record's field/value pairs
-- Reply: 1 created (or a withdrawn hold revived: a replay held the call after all), 0 it existed.
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'withdrawn' then return 0 end
if status then redis.call('HDEL', KEYS[1], 'decided_by', 'decided_at') end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SET', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], '')
return 1
