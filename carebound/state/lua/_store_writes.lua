-- Helper store_writes: what checkpoint_put_writes.lua stores in a namespace's w and wx keys:
-- the (field, value, overwrite 1|0) triples from argv[first] on (an overwrite replaces a write
-- of the same field, any other keeps it).
local function store_writes(w, wx, argv, first)
  local index = {}
  for i = first, #argv, 3 do
    if argv[i + 2] == '1' then
      redis.call('HSET', w, argv[i], argv[i + 1])
    else
      redis.call('HSETNX', w, argv[i], argv[i + 1])
    end
    table.insert(index, 0)
    table.insert(index, argv[i])
  end
  if #index > 0 then call_chunked('ZADD', wx, index, 400) end
end
