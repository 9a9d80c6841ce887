-- Record how a call to a system ended (carebound.state.breaker).
-- KEYS: the system's breaker hash, the set of systems that recovered (waiting for the sweep)
-- ARGV: now_ms, outcome ('ok' or 'fail'), failure threshold, first open_ms, max open_ms,
--       system name
-- Reply: {state, open_until_ms}. A success on an open or half-open breaker closes it and adds
-- the system to the recovered set; a failure on a half-open one reopens it for twice as long
-- (up to max open_ms); the threshold-th failure in a row opens a closed one.
local now = tonumber(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opens')
local state = cur[1] or 'closed'
if ARGV[2] == 'ok' then
  if state ~= 'closed' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0,
      'closed_at', string.format('%d', now))
    redis.call('HDEL', KEYS[1], 'open_until', 'probe_until')
    redis.call('SADD', KEYS[2], ARGV[6])
  elseif tonumber(cur[2] or '0') > 0 then
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
  return {'closed', 0}
end
local failures = tonumber(cur[2] or '0') + 1
local opens = tonumber(cur[3] or '0')
if state == 'open' then
  redis.call('HSET', KEYS[1], 'failures', failures)
  return {'open', tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')}
end
if state == 'half_open' or failures >= tonumber(ARGV[3]) then
  local span = math.min(tonumber(ARGV[4]) * (2 ^ opens), tonumber(ARGV[5]))
  local open_until = now + span
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', failures, 'opens', opens + 1,
    'opened_at', string.format('%d', now), 'open_until', string.format('%d', open_until))
  redis.call('HDEL', KEYS[1], 'probe_until')
  return {'open', open_until}
end
redis.call('HSET', KEYS[1], 'failures', failures)
return {'closed', 0}
