-- Helper put_packed: a packed entry turned into the checkpoint put stores (put's ARGV from
-- argv[o + 1], its blob field/value pairs up to argv[last]), in place of the older one it
-- held, as compaction would leave them: the blobs of the new checkpoint's fields are the values
-- put sends, else those the entry held under the same field (false: none); the writes against
-- the older checkpoint are dropped; the runs index loses the older checkpoint's member and gets
-- the new one's. False, the entry unchanged, when the checkpoint put is not newer than the
-- entry's.
local function put_packed(entry, argv, runs, o, last)
  local cid = argv[o + 2]
  if not bytes_before(entry[2], cid) then return false end
  local held = {}
  local old = cmsgpack.unpack(entry[4])
  for j = 2, #old do held[old[j]] = entry[5][j - 1] end
  for i = o + 9, last, 2 do held[argv[i]] = argv[i + 1] end
  local refs = cmsgpack.unpack(argv[o + 4])
  local blobs = {}
  for j = 2, #refs do blobs[j - 1] = held[refs[j]] or false end
  if old[1] ~= '' then redis.call('ZREM', runs, old[1] .. '\0' .. entry[1] .. '\0' .. entry[2]) end
  if argv[o + 8] ~= '' then redis.call('ZADD', runs, 0, argv[o + 8]) end
  entry[2], entry[3], entry[4] = cid, argv[o + 3], argv[o + 4]
  entry[5], entry[6], entry[7] = blobs, {}, {}
  return true
end
