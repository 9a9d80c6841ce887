-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Delete the checkpoints these runs wrote.
-- KEYS: ns, runs
-- ARGV: key base, run ids...
-- Reply: the number of checkpoints deleted.
local base = ARGV[1]
unpack_thread(base, KEYS[1])
local touched = {}
local n = 0
for i = 2, #ARGV do
  local run = ARGV[i]
  local members = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. run .. '\0', '(' .. run .. '\1')
  for _, m in ipairs(members) do
    local ns, cid = string.match(string.sub(m, #run + 2), '^(.*)%z([^%z]*)$')
    if ns then
      drop_checkpoint(base, KEYS[2], ns, cid)
      touched[ns] = true
      n = n + 1
    end
    redis.call('ZREM', KEYS[2], m)
  end
end
for ns, _ in pairs(touched) do gc_blobs(base, ns) end
return n
