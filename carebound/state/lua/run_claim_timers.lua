-- Claim due timers and re-claim stale claims (carebound.state.runs.RunStore).
-- KEYS: the due timers zset, the claimed zset
-- ARGV: now (ms), stale-claim cutoff (ms), limit, claim score (ms)
-- Reply: the claimed members.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZADD', KEYS[2], ARGV[4], m)
  table.insert(out, m)
end
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[4], m)
  table.insert(out, m)
end
return out
