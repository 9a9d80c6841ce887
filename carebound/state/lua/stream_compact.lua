-- Rewrite a stream in place with exact-size nodes (DUMP, then RESTORE with its TTL kept).
--
-- Redis allocates a stream's newest node at 4 KB up front and trims it only once the node is
-- full, so a run's audit stream of a few events paid 4 KB for room it never used. A restored
-- stream's nodes are as long as their entries (ids, entries, deletions and groups are kept);
-- the next XADD grows the last node as it needs. Called when a run stops (settle).
--
-- KEYS: the stream. ARGV: none.
-- Reply: 1 rewritten | 0 no such key.
local dump = redis.call('DUMP', KEYS[1])
if not dump then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
redis.call('RESTORE', KEYS[1], ttl, dump, 'REPLACE')
return 1
