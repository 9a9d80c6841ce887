-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Keep only the newest checkpoint of every namespace, fenced by the run's lease (the engine
-- compacts its own runs when they stop; history is kept for every other thread), and fold
-- what is left into one packed key (pack_thread; an already packed thread stays as it is);
-- pack_latest does both in one pass when it can.
-- KEYS: ns, runs, lease
-- ARGV: key base, fencing token or ''
-- Reply: {1, 0}, or {0, current token} when fenced out.
local refused = fence(KEYS[3], ARGV[2])
if refused then return refused end
if redis.call('EXISTS', KEYS[1]) == 1 and not pack_latest(ARGV[1], KEYS[1], KEYS[2]) then
  keep_latest(ARGV[1], KEYS[1], KEYS[2])
  pack_thread(ARGV[1], KEYS[1])
end
return {1, 0}
