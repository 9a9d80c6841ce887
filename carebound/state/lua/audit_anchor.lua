-- Mirror a run's new chain head into the anchors hash, never moving it back
-- (carebound.audit._chain; on a Redis Cluster the anchor lives in another slot than the
-- chain, so it is written in a second step, and two writers' second steps may land in either
-- order).
--
-- KEYS: anchors hash. ARGV: run id, the new head's seq, "seq:hash".
-- Reply: 1 written | 0 the anchor already records this seq or a later one.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local seq = tonumber(string.match(current, '^(%d+):'))
  if seq and seq >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
