-- Reserve an effect's idempotency key (carebound.state.ledger.EffectLedger.reserve), fenced by
-- the run's lease: a driver that lost the run reserves nothing (so it makes no effect).
-- KEYS: the run's ledger hash, the run's lease hash
-- ARGV: idempotency key, the new entry's JSON, fencing token or ''
-- Reply: nil when reserved now; {0, current token} when fenced out; else the existing entry
--        as stored (attempts + 1 if still reserved).
local refused = fence(KEYS[2], ARGV[3])
if refused then return refused end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  -- a completed entry may be stored deflated ('~l1:...', '~z:...', carebound.state.ledger): never
  -- reserved, so returned as it is
  if string.sub(cur, 1, 1) == '~' then return cur end
  local entry = cjson.decode(cur)
  if entry['status'] == 'reserved' then
    entry['attempts'] = entry['attempts'] + 1
    cur = cjson.encode(entry)
    redis.call('HSET', KEYS[1], ARGV[1], cur)
  end
  return cur
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
