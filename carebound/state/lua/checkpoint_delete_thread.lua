-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Remove every checkpoint key of the thread.
-- KEYS: ns, runs
-- ARGV: key base
-- Reply: the number of keys deleted.
local n = 0
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', unpack(ns_keys(ARGV[1], ns)))
end
return n + redis.call('DEL', KEYS[1], KEYS[2], ARGV[1] .. 'pk')
