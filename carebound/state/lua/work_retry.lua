-- Retry a dead letter (carebound.state.work_queue): delete it from the dead-letter stream and
-- enqueue its run again (coalesced like any wake-up).
-- KEYS: stream, queued, stats, dead
-- ARGV: dead letter id, run_id
-- Reply: 1 retried, 0 no such dead letter.
if redis.call('XDEL', KEYS[4], ARGV[1]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[3], 'retried', 1)
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 1
end
local id = redis.call('XADD', KEYS[1], '*', 'run', ARGV[2], 'why', 'retry')
redis.call('HSET', KEYS[2], ARGV[2], id)
redis.call('HINCRBY', KEYS[3], 'enqueued', 1)
return 1
