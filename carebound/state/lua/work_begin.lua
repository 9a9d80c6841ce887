-- A worker begins a message (carebound.state.work_queue): the run's next wake-up enqueues a new
-- message from now on, and the message's delivery count goes up by one.
-- KEYS: stream, queued (hash run -> message id), tries (hash message id -> deliveries)
-- ARGV: run_id, message id
-- Reply: how many times the message has been begun, this time included; 0 when it is done
--        already (acknowledged or dead-lettered: a late or doubled reclaim), nothing changed.
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
