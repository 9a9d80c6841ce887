-- Sum the process figures' day hashes of a span of days (carebound.state.kpi), server-side, so
-- a report reads each counter once rather than once per day.
--
-- KEYS: the day hashes (oldest first). ARGV: the fields whose value is wanted per day too.
-- Reply: {flat field/sum pairs, then one array per ARGV field of its value on each day}.
local sums, order = {}, {}
local daily = {}
for j = 1, #ARGV do daily[j] = {} end
for k = 1, #KEYS do
  local pairs_ = redis.call('HGETALL', KEYS[k])
  for i = 1, #pairs_, 2 do
    local f, v = pairs_[i], tonumber(pairs_[i + 1])
    if sums[f] == nil then sums[f] = 0; order[#order + 1] = f end
    sums[f] = sums[f] + v
  end
  for j = 1, #ARGV do
    daily[j][k] = tonumber(redis.call('HGET', KEYS[k], ARGV[j]) or '0')
  end
end
local flat = {}
for _, f in ipairs(order) do
  flat[#flat + 1] = f
  flat[#flat + 1] = tostring(sums[f])
end
return {flat, daily}
