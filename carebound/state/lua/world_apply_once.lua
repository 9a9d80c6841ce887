-- Apply a simulated system's guarded writes, once per effect key
-- (carebound.tools.connectors._redis_state).
-- KEYS: the keys the spec's indexes point at (one run's hash tag), then the world's key registry
--       (its world:meta hash, read by run_retention.lua; runs seeded before registered their
--       world's keys in the run's key registry)
-- ARGV: spec JSON {attempts: idx of the system's attempt counter, counted first | absent,
--       effect: [result hash idx, log list idx, key, result] | absent,
--       guards: [[key idx, field, expected or null]...], ops: [[command, key idx, args...]...]},
--       the length of the run's key base ('<prefix>:{<run>}:')
-- Every key written is registered (its suffix after the base) for the retention script, all in
-- one HSET before the writes (a command not allowed refuses the whole spec before any write).
-- Reply: {1, result} applied | {0, prior result} effect already applied | {2, field} a guard
--        failed
local spec = cjson.decode(ARGV[1])
if spec.attempts then redis.call('INCR', KEYS[spec.attempts]) end
local eff = spec.effect
if eff then
  local prior = redis.call('HGET', KEYS[eff[1]], eff[3])
  if prior then return {0, prior} end
end
for _, g in ipairs(spec.guards) do
  local current = redis.call('HGET', KEYS[g[1]], g[2])
  if g[3] == cjson.null then
    if current then return {2, g[2]} end
  elseif current ~= g[3] then
    return {2, g[2]}
  end
end
local base_len = tonumber(ARGV[2])
local allowed = {HSET=true, HDEL=true, HSETNX=true, HINCRBY=true, ZADD=true, RPUSH=true}
local registered = {}  -- registry field/value pairs, each key once, registered in one HSET
local seen = {}
local function register(key)
  if not seen[key] then
    seen[key] = true
    registered[#registered + 1] = string.sub(key, base_len + 1)
    registered[#registered + 1] = ''
  end
end
for _, op in ipairs(spec.ops) do
  if not allowed[op[1]] then
    return redis.error_reply('carebound world: command not allowed: ' .. tostring(op[1]))
  end
  register(KEYS[op[2]])
end
if eff then
  register(KEYS[eff[1]])
  register(KEYS[eff[2]])
end
if #registered > 0 then call_chunked('HSET', KEYS[#KEYS], registered, 400) end
for _, op in ipairs(spec.ops) do
  redis.call(op[1], KEYS[op[2]], unpack(op, 3))
end
if eff then
  redis.call('HSETNX', KEYS[eff[1]], eff[3], eff[4])
  redis.call('RPUSH', KEYS[eff[2]], eff[3])
  return {1, eff[4]}
end
return {1, ''}
