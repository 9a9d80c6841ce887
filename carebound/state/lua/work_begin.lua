-- A worker begins a message (carebound.state.work_queue): the run's next wake-up enqueues a new
-- message from now on, and the message's delivery count goes up by one.
-- KEYS: queued (hash run -> message id), tries (hash message id -> deliveries)
-- ARGV: run_id, message id
-- Reply: how many times the message has been begun, this time included.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
