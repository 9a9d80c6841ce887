-- Helper store_pack: write a thread's packed entries at <base>pk with the namespace set's TTL
-- and delete the namespace set and the per-namespace keys listed in ``all`` (the set first);
-- the packed shape is pack_thread's.
local function store_pack(base, nsset, entries, all)
  local ttl = redis.call('PTTL', nsset)
  local pk = base .. 'pk'
  redis.call('SET', pk, cmsgpack.pack(entries))
  if ttl > 0 then redis.call('PEXPIRE', pk, ttl) end
  call_chunked('DEL', nsset, all, 500, 2)
end
