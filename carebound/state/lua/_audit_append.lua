-- Helper audit_append: append one event to a run's chain if the head is still the one it was
-- chained to (audit_record.lua). k: {stream, head, once-keys[, global index, anchors]} (the
-- index pair only on a single server); e: {expected seq, expected hash,
-- new seq, new hash, event JSON, once key or ''}; genesis: the genesis hash; run_id; check:
-- nil, or a function run after the once key's check that returns nil to go on or a reply to
-- refuse with (audit_record.lua's guard).
-- Reply: as audit_record.lua's.
local function audit_append(k, e, genesis, run_id, check)
  local once = e[6] ~= '' and 'o:' .. e[6] or nil
  -- the head and the once key's mark in one read (the checks below write nothing)
  local head = redis.call('HMGET', k[2], 'seq', 'hash', once or 'seq')
  if once and (head[3] or redis.call('HEXISTS', k[3], e[6]) == 1) then
    return {2, head[1] or '0', head[2] or ''}
  end
  if check then
    local refused = check()
    if refused then return refused end
  end
  local seq = head[1] or '0'
  local hash = head[2] or genesis
  if seq ~= e[1] or hash ~= e[2] then
    return {0, seq, hash}
  end
  local id = audit_xadd(k, run_id, e[3], e[5])
  if k[4] then redis.call('HSET', k[5], run_id, e[3] .. ':' .. e[4]) end
  if once then
    redis.call('HSET', k[2], 'seq', e[3], 'hash', e[4], once, '')
  else
    redis.call('HSET', k[2], 'seq', e[3], 'hash', e[4])
  end
  return {1, id}
end
