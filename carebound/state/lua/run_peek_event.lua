-- The run's next queued event (carebound.state.runs.RunStore).
-- KEYS: the run's events queue, its events hash
-- ARGV: none
-- Reply: the event JSON, or nil when the queue is empty.
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return false end
return redis.call('HGET', KEYS[2], id)
