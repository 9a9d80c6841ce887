-- Helper audit_xadd: add an event to a run's stream and, with k[4] (a single server), its
-- pointer to the global index under the same id (audit_record.lua says why); returns the
-- entry id in the run's stream. k: {stream, head, once-keys[, global index, anchors]}.
local function audit_xadd(k, run_id, seq, event)
  if not k[4] then return redis.call('XADD', k[1], '*', 'event', event) end
  local at = redis.call('XADD', k[4], '*', 'run_id', run_id, 'seq', seq)
  local id = redis.pcall('XADD', k[1], at, 'event', event)
  if type(id) == 'table' then -- refused: the run's stream is past the index's id
    id = redis.call('XADD', k[1], '*', 'event', event)
    redis.call('XDEL', k[4], at)
    redis.call('XADD', k[4], '*', 'run_id', run_id, 'seq', seq, 'at', id)
  end
  return id
end
