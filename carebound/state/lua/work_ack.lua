-- A message is done (carebound.state.work_queue): acknowledge it, delete it from the stream (so
-- XLEN is the queue's depth), forget its delivery count and count it under ARGV[3].
-- KEYS: stream, tries, stats
-- ARGV: group, message id, counter (done | busy)
-- Reply: 1 acknowledged now, 0 it was not pending (another worker acknowledged it).
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if acked == 1 then
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
end
return acked
