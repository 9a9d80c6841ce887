-- Take the systems whose breaker closed since the last take (carebound.state.breaker).
-- KEYS: the recovered set
-- ARGV: none
-- Reply: the system names; each is handed to one caller, once.
local names = redis.call('SMEMBERS', KEYS[1])
if #names > 0 then redis.call('DEL', KEYS[1]) end
return names
