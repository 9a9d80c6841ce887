-- Helper call_chunked: call a variadic command on a key with the list's items, at most
-- `step` at a time (Lua's unpack has a limit), from index `first` (default 1).
local function call_chunked(cmd, key, list, step, first)
  local n = #list
  local i = first or 1
  while i <= n do
    local j = math.min(i + step - 1, n)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end
