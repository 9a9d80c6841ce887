-- Helper bytes_before: whether string a sorts before string b byte by byte, as Redis orders
-- the members of a sorted set that share a score (Lua's own < follows the server's locale).
local function bytes_before(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
