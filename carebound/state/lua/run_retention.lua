-- Match the expiry of every key of a run to its status (carebound.state.retention).
-- KEYS: the run's record hash (its 'status' field holds the status), its key registry (the
--       run hash again: its fields that start with 'approval:' are key suffixes, filled by the
--       approval script; an approval's request key is its suffix + ':request'; 'world:' ones
--       were listed by runs seeded before the world's meta hash),
--       its checkpoint namespaces (set), its simulated world's meta hash (whose fields that
--       start with 'world:' name the world's keys)
-- ARGV: seconds an ended run's keys are kept (0: for ever), the run's key base
--       ('<prefix>:{<run>}:'), the ended statuses (comma-separated), then the suffixes of the
--       run's fixed keys
-- An ended run's keys get the TTL (EXPIRE); a run that is not ended, or with 0 seconds, has
-- every TTL removed (PERSIST): a run reopened after it ended keeps its keys again.
-- Reply: how many keys were changed, or -1 when the record is missing or unreadable (nothing
--        changed)
local stored = redis.call('HGET', KEYS[1], 'status')
if not stored or stored == '' then return -1 end
local ttl = tonumber(ARGV[1])
local ended = false
for status in string.gmatch(ARGV[3], '[^,]+') do
  if status == stored then ended = true end
end
local base = ARGV[2]
local keys = {}
for i = 4, #ARGV do keys[#keys + 1] = base .. ARGV[i] end
for _, suffix in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(suffix, 1, 9) == 'approval:' then
    keys[#keys + 1] = base .. suffix
    keys[#keys + 1] = base .. suffix .. ':request'
  elseif string.sub(suffix, 1, 6) == 'world:' then -- listed here by runs seeded before world:meta
    keys[#keys + 1] = base .. suffix
  end
end
for _, suffix in ipairs(redis.call('HKEYS', KEYS[4])) do
  if string.sub(suffix, 1, 6) == 'world:' then keys[#keys + 1] = base .. suffix end
end
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  for _, k in ipairs(ns_keys(base .. 'cp:', ns)) do keys[#keys + 1] = k end
end
local changed = 0
for _, k in ipairs(keys) do
  if ended and ttl > 0 then
    changed = changed + redis.call('EXPIRE', k, ttl)
  else
    changed = changed + redis.call('PERSIST', k)
  end
end
return changed
