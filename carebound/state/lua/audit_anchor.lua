-- Mirror a run's new chain head into the anchors hash, never moving it back
-- (carebound.audit._chain; on a Redis Cluster the anchor lives in another slot than the
-- chain, so it is written in a second step, and two writers' second steps may land in either
-- order).
--
-- KEYS: anchors hash. ARGV: run id, the new head's seq, "seq:hash".
-- Reply: the seq the anchor recorded before (0: none); it is written unless that seq is this
-- one or a later one. A seq below the new head's predecessor tells the caller that a crash
-- lost the second step of the events in between (their global index entries too).
local current = redis.call('HGET', KEYS[1], ARGV[1])
local seq = 0
if current then seq = tonumber(string.match(current, '^(%d+):')) or 0 end
if seq >= tonumber(ARGV[2]) then return seq end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return seq
