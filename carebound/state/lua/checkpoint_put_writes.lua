-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Store a task's pending writes, fenced by the run's lease; a fenced write against the
-- checkpoint of a packed thread keeps it packed (packed_entry), any other unpacks it.
-- KEYS: ns, w, wx, lease, runs
-- ARGV: ns, fencing token or '', ttl, key base, then (field, value, overwrite 1|0) triples.
-- Reply: {1, 1 if the thread is new else 0}, or {0, current token} when fenced out.
local refused = fence(KEYS[4], ARGV[2])
if refused then return refused end
local entries, at = packed_entry(ARGV[4], ARGV[1], ARGV[2])
if entries and add_packed_writes(entries[at], ARGV, 5) then
  keep_packed(ARGV[4], KEYS[5], entries, tonumber(ARGV[3]))
  return {1, 0}
end
local new = redis.call('EXISTS', KEYS[1]) == 0
if new then
  unpack_thread(ARGV[4], KEYS[1])  -- a packed thread has no namespace set
  new = redis.call('EXISTS', KEYS[1]) == 0
end
redis.call('SADD', KEYS[1], ARGV[1])
store_writes(KEYS[2], KEYS[3], ARGV, 5)
refresh_ttl(ARGV[4], KEYS[1], KEYS[5], tonumber(ARGV[3]))
return {1, new and 1 or 0}
