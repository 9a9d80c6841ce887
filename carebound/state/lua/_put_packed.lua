-- Helper put_packed: a packed entry turned into the checkpoint put stores (argv as put's), in
-- place of the older one it held, as compaction would leave them: the blobs of the new
-- checkpoint's fields are the values put sends, else those the entry held under the same field
-- (false: none); the writes against the older checkpoint are dropped; the runs index loses the
-- older checkpoint's member and gets the new one's. False, the entry unchanged, when the
-- checkpoint put is not newer than the entry's.
local function put_packed(entry, argv, runs)
  local cid = argv[2]
  if not bytes_before(entry[2], cid) then return false end
  local held = {}
  local old = cmsgpack.unpack(entry[4])
  for j = 2, #old do held[old[j]] = entry[5][j - 1] end
  for i = 9, #argv, 2 do held[argv[i]] = argv[i + 1] end
  local refs = cmsgpack.unpack(argv[4])
  local blobs = {}
  for j = 2, #refs do blobs[j - 1] = held[refs[j]] or false end
  if old[1] ~= '' then redis.call('ZREM', runs, old[1] .. '\0' .. entry[1] .. '\0' .. entry[2]) end
  if argv[8] ~= '' then redis.call('ZADD', runs, 0, argv[8]) end
  entry[2], entry[3], entry[4], entry[5], entry[6], entry[7] = cid, argv[3], argv[4], blobs, {}, {}
  return true
end
