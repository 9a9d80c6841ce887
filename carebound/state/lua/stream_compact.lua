-- Rewrite a stream in place with exact-size nodes (DUMP, then RESTORE with its TTL kept), when
-- it has a node that may not be exact yet.
--
-- Redis allocates a stream's newest node at 4 KB up front and trims it only once the node is
-- full, so a run's audit stream of a few events paid 4 KB for room it never used. A restored
-- stream's nodes are as long as their entries (ids, entries, deletions and groups are kept);
-- the next XADD grows the last node as it needs, and only a new node (the last one full) is
-- allocated at 4 KB again. So the stream's shape at the last rewrite (its node count, and how
-- many entries were ever removed from it) is kept in a field of a hash (the chain head), and the
-- rewrite is skipped while the shape is the same: a DUMP and RESTORE of an already compact
-- stream cost most of the script and saved nothing. Called when a run stops (settle).
--
-- KEYS: the stream, the hash that keeps the count. ARGV: the count's field.
-- Reply: 1 rewritten | 2 already compact | 0 no such key.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
local shape
if fields['radix-tree-keys'] and fields['entries-added'] then
  shape = fields['radix-tree-keys'] .. ':' .. (fields['entries-added'] - fields['length'])
end
if shape ~= nil and redis.call('HGET', KEYS[2], ARGV[1]) == shape then return 2 end
local dump = redis.call('DUMP', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
redis.call('RESTORE', KEYS[1], ttl, dump, 'REPLACE')
if shape ~= nil then redis.call('HSET', KEYS[2], ARGV[1], shape) end
return 1
