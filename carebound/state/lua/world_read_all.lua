-- Read a simulated world whole, for one graph segment's reads
-- (carebound.state.segment_reads, carebound.tools.connectors._redis_state).
-- KEYS: the world's key registry (its world:meta hash, whose fields that start with 'world:'
--       name the world's keys, all under the run's hash tag)
-- ARGV: the run's key base ('<prefix>:{<run>}:')
-- Reply: flat {suffix, {field, value, ...}, ...}: every registered key that holds a hash, or
--        holds nothing (an empty list: known empty); keys of other types are left out
-- (one HGETALL a key: a key that holds nothing reads as an empty hash, and one of another type
-- is refused, WRONGTYPE, and left out; no TYPE first)
local base = ARGV[1]
local out = {}
for _, suffix in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(suffix, 1, 6) == 'world:' then
    local fields = redis.pcall('HGETALL', base .. suffix)
    if fields.err == nil then
      out[#out + 1] = suffix
      out[#out + 1] = fields
    end
  end
end
return out
