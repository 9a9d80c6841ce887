-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Store one checkpoint and writes against it in one step, fenced by the run's lease: what
-- checkpoint_put.lua and then checkpoint_put_writes.lua store (a drive's buffered writes are
-- sent so), with a packed thread read and written once.
-- KEYS: ns, ids, rec, blob, lease, runs, w, wx
-- ARGV: n, then put's ARGV (n items), then put_writes' (field, value, overwrite 1|0) triples,
--       every one against the checkpoint put.
-- Reply: {1, 1 if the thread is new else 0}, or {0, current token} when fenced out; an error,
-- nothing written, for a write against another checkpoint.
local n = tonumber(ARGV[1])
local prefix = ARGV[3] .. '\0'
for i = n + 2, #ARGV, 3 do
  if string.sub(ARGV[i], 1, #prefix) ~= prefix then
    return redis.error_reply('checkpoint_put_with_writes: a write is not against ' .. ARGV[3])
  end
end
local refused = fence(KEYS[5], ARGV[6])
if refused then return refused end
local entries, at = packed_entry(ARGV[8], ARGV[2], ARGV[6])
if entries and put_packed(entries[at], ARGV, KEYS[6], 1, n + 1) then
  add_packed_writes(entries[at], ARGV, n + 2)
  keep_packed(ARGV[8], KEYS[6], entries, tonumber(ARGV[7]))
  return {1, 0}
end
local new = store_checkpoint(KEYS, ARGV, 1, n + 1)
store_writes(KEYS[7], KEYS[8], ARGV, n + 2)
refresh_ttl(ARGV[8], KEYS[1], KEYS[6], tonumber(ARGV[7]))
return {1, new and 1 or 0}
