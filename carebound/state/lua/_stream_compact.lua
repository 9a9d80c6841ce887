-- Helper stream_compact: rewrite a stream with exact-size nodes when it may have a node that is
-- not exact yet (stream_compact.lua says why and when). stream: the stream; hash, field: where
-- its shape at its last rewrite is kept; exists: the caller knows the stream exists.
-- Returns 1 rewritten | 2 already compact | 0 no such key.
local function stream_compact(stream, hash, field, exists)
  if not exists and redis.call('EXISTS', stream) == 0 then return 0 end
  -- FULL with COUNT 1 copies one entry into Lua (the plain form copies the first and the
  -- last), and RESP3 gives its fields as a map: what reading the shape cost went to both
  redis.setresp(3)
  local info = redis.call('XINFO', 'STREAM', stream, 'FULL', 'COUNT', 1)['map']
  redis.setresp(2)
  local shape
  if info['radix-tree-keys'] and info['entries-added'] then
    shape = info['radix-tree-keys'] .. ':' .. (info['entries-added'] - info['length'])
  end
  if shape ~= nil and redis.call('HGET', hash, field) == shape then return 2 end
  local dump = redis.call('DUMP', stream)
  local ttl = redis.call('PTTL', stream)
  if ttl < 0 then ttl = 0 end
  redis.call('RESTORE', stream, ttl, dump, 'REPLACE')
  if shape ~= nil then redis.call('HSET', hash, field, shape) end
  return 1
end
