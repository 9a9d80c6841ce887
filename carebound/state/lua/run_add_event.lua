-- Queue an event for a run once (carebound.state.runs.RunStore.add_event).
-- KEYS: the run's events hash, its events queue
-- ARGV: event id, event JSON
-- Reply: 1 queued, 0 the id was already there.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
