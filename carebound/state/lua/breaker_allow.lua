-- May a call to a system go out now? (carebound.state.breaker)
-- KEYS: the system's breaker hash
-- ARGV: now_ms, probe_ms (how long one probe may take before another process may probe)
-- Reply: {allowed (1/0), state, retry_at_ms}. An open breaker whose cool-down is over lets
-- exactly one caller through as the probe (state half_open until that caller reports back).
local now = tonumber(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = cur[1] or 'closed'
if state == 'closed' then return {1, 'closed', 0} end
if state == 'open' and now < tonumber(cur[2] or '0') then
  return {0, 'open', tonumber(cur[2])}
end
if state == 'half_open' and now < tonumber(cur[3] or '0') then
  return {0, 'half_open', tonumber(cur[3])}
end
local probe_until = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', string.format('%d', probe_until))
return {1, 'half_open', 0}
