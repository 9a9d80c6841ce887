-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- The thread's checkpoint namespaces, read from its packed key when it is packed.
-- KEYS: ns, the thread's packed key
-- ARGV: none
-- Reply: the namespaces (any order).
local raw = redis.call('GET', KEYS[2])
if not raw then return redis.call('SMEMBERS', KEYS[1]) end
local entries = cmsgpack.unpack(raw)
local out = {}
for i = 2, #entries do table.insert(out, entries[i][1]) end
return out
