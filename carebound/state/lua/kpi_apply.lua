-- Apply one fold of audit events to the process figures, only if the cursor is still the one
-- the fold started from (carebound.state.kpi): every event is counted exactly once, whoever
-- folds.
--
-- KEYS: meta hash (field 'cursor'), open-state hash, days zset, all-time totals hash, then the
-- day hashes.
-- ARGV: expected cursor ('' for none), new cursor, number of open fields to put, their
-- field/value pairs, number of open fields to drop, those fields, then each day hash's day
-- number (in KEYS order from the fifth key), then (key index in KEYS, field, amount) triples.
-- Reply: 1 applied | 0 the cursor had moved (fold again from the new one).
local cursor = redis.call('HGET', KEYS[1], 'cursor') or ''
if cursor ~= ARGV[1] then return 0 end
local i = 3
local nput = tonumber(ARGV[i]); i = i + 1
for _ = 1, nput do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
local ndrop = tonumber(ARGV[i]); i = i + 1
for _ = 1, ndrop do
  redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1
end
for k = 5, #KEYS do
  redis.call('ZADD', KEYS[3], ARGV[i], KEYS[k]); i = i + 1
end
while i <= #ARGV do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
  i = i + 3
end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2])
return 1
