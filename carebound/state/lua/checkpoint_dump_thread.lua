-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Read every namespace of the thread (for copy_thread; a packed thread is unpacked first).
-- KEYS: ns
-- ARGV: key base
-- Reply: {ns, rec fields+values, blob fields+values, write fields+values} per namespace.
unpack_thread(ARGV[1], KEYS[1])
local out = {}
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ns_keys(ARGV[1], ns)
  table.insert(out, {ns, redis.call('HGETALL', k[2]), redis.call('HGETALL', k[3]),
                     redis.call('HGETALL', k[4])})
end
return out
