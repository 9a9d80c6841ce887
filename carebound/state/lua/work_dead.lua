-- Move a message to the dead-letter stream (carebound.state.work_queue): acknowledge and delete
-- it from the work stream (and from the run's waiting entry, if it is that), add the run to the
-- dead letters with why it failed.
-- KEYS: stream, tries, stats, dead, queued
-- ARGV: group, message id, run_id, reason, deliveries
-- Reply: the dead letter's id, or false when the message was not pending any more.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return false
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[5], ARGV[3]) == ARGV[2] then
  redis.call('HDEL', KEYS[5], ARGV[3])
end
redis.call('HINCRBY', KEYS[3], 'dead_lettered', 1)
return redis.call('XADD', KEYS[4], '*', 'run', ARGV[3], 'reason', ARGV[4], 'tries', ARGV[5])
