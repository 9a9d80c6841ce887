-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Store one checkpoint, fenced by the run's lease; a fenced put of a newer checkpoint of a
-- packed thread keeps it packed (packed_entry, put_packed), any other unpacks it.
-- KEYS: ns, ids, rec, blob, lease, runs
-- ARGV: ns, cid, record, meta, fencing token or '', ttl, key base, run member or '',
--       then blob field/value pairs.
-- Reply: {1, 1 if the thread is new else 0}, or {0, current token} when fenced out.
local refused = fence(KEYS[5], ARGV[5])
if refused then return refused end
local entries, at = packed_entry(ARGV[7], ARGV[1], ARGV[5])
if entries and put_packed(entries[at], ARGV, KEYS[6], 0, #ARGV) then
  keep_packed(ARGV[7], KEYS[6], entries, tonumber(ARGV[6]))
  return {1, 0}
end
local new = store_checkpoint(KEYS, ARGV, 0, #ARGV)
refresh_ttl(ARGV[7], KEYS[1], KEYS[6], tonumber(ARGV[6]))
return {1, new and 1 or 0}
