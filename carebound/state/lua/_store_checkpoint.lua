-- Helper store_checkpoint: what checkpoint_put.lua stores in a thread's per-namespace keys (a
-- packed thread is unpacked first): keys {ns, ids, rec, blob, lease, runs}; put's ARGV from
-- argv[o + 1] (o: the items before them), its blob field/value pairs up to argv[last].
-- Returns whether the thread is new.
local function store_checkpoint(keys, argv, o, last)
  local new = redis.call('EXISTS', keys[1]) == 0
  if new then
    unpack_thread(argv[o + 7], keys[1])  -- a packed thread has no namespace set
    new = redis.call('EXISTS', keys[1]) == 0
  end
  redis.call('SADD', keys[1], argv[o + 1])
  redis.call('ZADD', keys[2], 0, argv[o + 2])
  redis.call('HSET', keys[3], argv[o + 2], argv[o + 3], argv[o + 2] .. '\0r', argv[o + 4])
  local i = o + 9
  while i <= last do  -- the blob pairs, at most 200 a call (Lua's unpack has a limit)
    local j = math.min(i + 399, last)
    redis.call('HSET', keys[4], unpack(argv, i, j))
    i = j + 1
  end
  if argv[o + 8] ~= '' then redis.call('ZADD', keys[6], 0, argv[o + 8]) end
  return new
end
