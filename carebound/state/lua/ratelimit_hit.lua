-- Count one hit in a fixed window (carebound.web._ratelimit).
-- KEYS: the window's counter
-- ARGV: window length in seconds
-- Reply: the hits in the window so far.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
