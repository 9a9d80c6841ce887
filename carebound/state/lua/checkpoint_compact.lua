-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Keep only the newest checkpoint of every namespace, fenced by the run's lease (the engine
-- compacts its own runs when they stop; history is kept for every other thread).
-- KEYS: ns, runs, lease
-- ARGV: key base, fencing token or ''
-- Reply: {1, 0}, or {0, current token} when fenced out.
local refused = fence(KEYS[3], ARGV[2])
if refused then return refused end
keep_latest(ARGV[1], KEYS[1], KEYS[2])
return {1, 0}
