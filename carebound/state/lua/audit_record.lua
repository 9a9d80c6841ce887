-- Append one event to a run's hash-chained audit stream (carebound.audit._chain; the append
-- itself is the audit_append helper, shared with audit_record_many.lua).
--
-- KEYS: run stream, run head, run once-keys (read only)[, global index, anchors][, guard].
-- ARGV: expected seq, expected hash, new seq, new hash, event JSON, genesis hash, once key (''
-- for none), run id, compaction (the head's field that keeps the stream's shape, or ''), guard
-- (the guard key's position in KEYS, or ''), then the guard's field/value pairs.
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
-- with 'at'). With a compaction field, the run's stream is compacted after the append, whatever
-- its outcome, as stream_compact.lua compacts it (a settle's last event: one script call where
-- two were, the stream known to exist when the event was appended).
--
-- Reply: {1, entry id} appended | {0, seq, hash} the head moved | {2, seq, hash} the once key
--        was seen (the current head: on a cluster the caller brings the anchor up to it, in
--        case the append that recorded the key lost its reply) | {3} the guard did not hold
local nkeys = #KEYS
local check
if ARGV[10] and ARGV[10] ~= '' then
  local guard = KEYS[tonumber(ARGV[10])]
  nkeys = nkeys - 1
  check = function()
    for i = 11, #ARGV, 2 do
      if redis.call('HGET', guard, ARGV[i]) ~= ARGV[i + 1] then return {3} end
    end
    return nil
  end
end
local k = {KEYS[1], KEYS[2], KEYS[3]}
if nkeys >= 5 then k[4], k[5] = KEYS[4], KEYS[5] end
local e = {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]}
local reply = audit_append(k, e, ARGV[6], ARGV[8], check)
if ARGV[9] and ARGV[9] ~= '' then stream_compact(KEYS[1], KEYS[2], ARGV[9], reply[1] == 1) end
return reply
