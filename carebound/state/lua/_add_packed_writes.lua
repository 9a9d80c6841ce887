-- Helper add_packed_writes: put_writes' (field, value, overwrite 1|0) triples, from argv[first] on,
-- added to a packed entry's writes as put_writes stores them unpacked (an overwrite replaces a
-- write of the same field, any other keeps it), fields in byte order as the wx index keeps
-- them. False, the entry unchanged, when a write is not against the entry's checkpoint.
local function add_packed_writes(entry, argv, first)
  local prefix = entry[2] .. '\0'
  for i = first, #argv, 3 do
    if string.sub(argv[i], 1, #prefix) ~= prefix then return false end
  end
  local fields, values = entry[6], entry[7]
  for i = first, #argv, 3 do
    local field = argv[i]
    local at = #fields + 1
    for j = 1, #fields do  -- a checkpoint has a few writes
      if fields[j] == field then at = -j break end
      if bytes_before(field, fields[j]) then at = j break end
    end
    if at < 0 then
      if argv[i + 2] == '1' then values[-at] = argv[i + 1] end
    else
      table.insert(fields, at, field)
      table.insert(values, at, argv[i + 1])
    end
  end
  return true
end
