-- Take over an idempotency key whose start died before storing its run
-- (carebound.state.idempotency).
-- KEYS: the key's claim
-- ARGV: the claim as the taker read it, the taker's claim, its time to live in seconds
-- Reply: 1 taken over, 0 the claim changed meanwhile (another retry took it over first).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
