-- Checkpoint saver (carebound.checkpoint): one thread's keys, one hash tag;
-- stored shapes in carebound/checkpoint/_scripts.py.
-- Keep only the newest checkpoint of every namespace.
-- KEYS: ns, runs
-- ARGV: key base
-- Reply: 1.
-- a packed thread (pack_thread) holds only its newest checkpoints already
keep_latest(ARGV[1], KEYS[1], KEYS[2])
return 1
