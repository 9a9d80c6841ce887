-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Write a dumped thread under another key base.
-- KEYS: ns, runs
-- ARGV: key base, ttl, then per namespace:
--   ns, #cids, #blob pairs, #write pairs, (cid, record, meta, run member or '')...,
--   (blob field, value)..., (write field, value)...
-- Reply: 1.
local base = ARGV[1]
unpack_thread(base, KEYS[1])
local i = 3
while i <= #ARGV do
  local ns = ARGV[i]
  local ncp, nblob, nw = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local k = ns_keys(base, ns)
  redis.call('SADD', KEYS[1], ns)
  i = i + 4
  for _ = 1, ncp do
    local cid = ARGV[i]
    redis.call('ZADD', k[1], 0, cid)
    redis.call('HSET', k[2], cid, ARGV[i + 1], cid .. '\0r', ARGV[i + 2])
    if ARGV[i + 3] ~= '' then redis.call('ZADD', KEYS[2], 0, ARGV[i + 3]) end
    i = i + 4
  end
  for _ = 1, nblob do
    redis.call('HSET', k[3], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  for _ = 1, nw do
    redis.call('HSET', k[4], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', k[5], 0, ARGV[i])
    i = i + 2
  end
end
refresh_ttl(base, KEYS[1], KEYS[2], tonumber(ARGV[2]))
return 1
