-- Append one event to a run's hash-chained audit stream (carebound.audit._chain).
--
-- KEYS: run stream, run head, run once-keys (read only)[, global index, anchors][, guard].
-- ARGV: expected seq, expected hash, new seq, new hash, event JSON, genesis hash, once key (''
-- for none), run id, guard (the guard key's position in KEYS, or ''), then the guard's
-- field/value pairs.
-- Appends only if the head is still the one the event was chained to; otherwise returns the
-- current head so the caller can re-chain (sha256 is not available in Redis Lua). With a once
-- key, an event already recorded under that key for the run is not appended again: the key is
-- marked in the head hash ('o:' .. key, an empty value), where a run recorded it since; runs
-- recorded before kept their once keys in the once-keys hash (key -> entry id), still read.
-- With a guard, the event is appended only while those fields of that hash hold those values (a
-- decision's event rides with the decide step and is kept only if that step won). With a
-- fourth and fifth key before the guard (a single server, where keys of different hash slots
-- may meet in one script), the global index entry (a pointer: run id, seq and the entry's id
-- in the run's stream; carebound.state.audit_index) and the run's anchor (its head mirrored
-- outside the run's keys) are written in the same step; on a cluster the caller writes them
-- next. In that step the event takes the index entry's id in the run's stream too, so the
-- pointer leaves the id out ('at' only when the run's stream refuses it: an id not above its
-- last, e.g. the index was deleted and the clock went back; then that entry is written again
-- with 'at').
--
-- Reply: {1, entry id} appended | {0, seq, hash} the head moved | {2, seq, hash} the once key
--        was seen (the current head: on a cluster the caller brings the anchor up to it, in
--        case the append that recorded the key lost its reply) | {3} the guard did not hold
local once = ARGV[7] ~= '' and 'o:' .. ARGV[7] or nil
if once and (redis.call('HEXISTS', KEYS[2], once) == 1
             or redis.call('HEXISTS', KEYS[3], ARGV[7]) == 1) then
  local current = redis.call('HMGET', KEYS[2], 'seq', 'hash')
  return {2, current[1] or '0', current[2] or ''}
end
local nkeys = #KEYS
if ARGV[9] and ARGV[9] ~= '' then
  local guard = KEYS[tonumber(ARGV[9])]
  nkeys = nkeys - 1
  for i = 10, #ARGV, 2 do
    if redis.call('HGET', guard, ARGV[i]) ~= ARGV[i + 1] then return {3} end
  end
end
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = head[1] or '0'
local hash = head[2] or ARGV[6]
if seq ~= ARGV[1] or hash ~= ARGV[2] then
  return {0, seq, hash}
end
local id
if nkeys >= 5 then
  local at = redis.call('XADD', KEYS[4], '*', 'run_id', ARGV[8], 'seq', ARGV[3])
  id = redis.pcall('XADD', KEYS[1], at, 'event', ARGV[5])
  if type(id) == 'table' then -- refused: the run's stream is past the index's id
    id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[5])
    redis.call('XDEL', KEYS[4], at)
    redis.call('XADD', KEYS[4], '*', 'run_id', ARGV[8], 'seq', ARGV[3], 'at', id)
  end
  redis.call('HSET', KEYS[5], ARGV[8], ARGV[3] .. ':' .. ARGV[4])
else
  id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[5])
end
if once then
  redis.call('HSET', KEYS[2], 'seq', ARGV[3], 'hash', ARGV[4], once, '')
else
  redis.call('HSET', KEYS[2], 'seq', ARGV[3], 'hash', ARGV[4])
end
return {1, id}
