-- Apply a reviewer's decision to an approval record (carebound.approvals).
--
-- KEYS[1] = approval record. ARGV: kind, reviewer, role, args_hash, decision_json, now_ms,
-- new_status, escalate_role, escalate_deadline_ms, decide_id (unique per attempt: stored by
-- a winning final step or a first of two approvals, so the same attempt sent again, as a
-- pipeline re-sent after NOSCRIPT is, gets the same answer instead of "already decided"),
-- approver (who an approval counts as: the authenticated principal or the normalised reviewer
-- id), edited_hash and edited_request (an edit's new args hash and the request holding the
-- edited args; empty unless the edit changed the arguments), changes (JSON list of ArgChange:
-- what the decision changes in the agent's proposal).
--
-- Two-person holds count distinct approvers over the same arguments: an approve adds one; an
-- edit that changes the arguments is one approval of the new arguments (the record's request
-- and args hash become the edited ones, earlier approvals no longer count), an edit that
-- changes nothing counts like an approve.
--
-- Reply: {'ok'} | {'partial'} | {'missing'} | {'stale'} | {'escalated'} | {'same_approver'}
--        | {'decided', status, decided_by, decided_at} | {'wrong_role', role}
local rec = KEYS[1]
-- every field the checks below read, in one call (one redis.call per field cost more)
local f = redis.call('HMGET', rec, 'status', 'decide_id', 'partial_id', 'decided_by',
                     'decided_at', 'role', 'args_hash', 'two_person')
local status = f[1]
if not status then return {'missing'} end
local attempt = ARGV[10] or ''
if attempt ~= '' then
  if f[2] == attempt then return {'ok'} end
  if f[3] == attempt then return {'partial'} end
end
if status ~= 'pending' then
  return {'decided', status, f[4] or '', f[5] or '0'}
end
if f[6] ~= ARGV[3] then
  return {'wrong_role', f[6]}
end
if f[7] ~= ARGV[4] then return {'stale'} end
local kind = ARGV[1]
if kind == 'escalate' then
  redis.call('HSET', rec, 'role', ARGV[8], 'deadline_ms', ARGV[9])
  return {'escalated'}
end
local approver = ARGV[11] or ARGV[2]
if (kind == 'approve' or kind == 'edit') and f[8] == '1' then
  local edited_hash = ARGV[12] or ''
  if kind == 'edit' and edited_hash ~= '' and edited_hash ~= ARGV[4] then
    redis.call('HSET', rec, 'args_hash', edited_hash, 'request', ARGV[13],
               'approvers', cjson.encode({approver}), 'partial_id', attempt,
               'changes', ARGV[14])
    return {'partial'}
  end
  local approvers = cjson.decode(redis.call('HGET', rec, 'approvers'))
  for _, who in ipairs(approvers) do
    if who == approver then return {'same_approver'} end
  end
  table.insert(approvers, approver)
  redis.call('HSET', rec, 'approvers', cjson.encode(approvers))
  if #approvers < 2 then
    redis.call('HSET', rec, 'partial_id', attempt)
    return {'partial'}
  end
end
redis.call('HSET', rec, 'status', ARGV[7], 'decision', ARGV[5],
           'decided_by', ARGV[2], 'decided_at', ARGV[6], 'decide_id', attempt,
           'changes', ARGV[14] or '[]')
return {'ok'}
