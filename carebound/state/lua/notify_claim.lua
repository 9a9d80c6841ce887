-- Claim a notice for sending (carebound.state.notify): record it as pending and schedule its
-- retry in one step, so a notice whose sender dies after the claim is still sent later.
--
-- KEYS: the sent hash, the retry zset. ARGV: notice key, its pending state (JSON), retry at (ms).
-- Reply: 1 claimed | 0 claimed before (by this or another process).
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
