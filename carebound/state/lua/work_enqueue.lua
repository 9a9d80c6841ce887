-- Enqueue "drive run R" on the work stream, once per run until a worker begins it
-- (carebound.state.work_queue): many wake-ups of one run coalesce into one message.
-- KEYS: stream, queued (hash run -> message id), stats (hash of counters)
-- ARGV: run_id, why (start | decision | event | timer | deadline | recover | retry)
-- Reply: the new message id, or false when a message for the run is already waiting.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'coalesced', 1)
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'run', ARGV[1], 'why', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('HINCRBY', KEYS[3], 'enqueued', 1)
return id
