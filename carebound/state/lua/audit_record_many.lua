-- Append several events to one run's hash-chained audit stream in one step, in order, each as
-- audit_record.lua appends one (no guard): an event whose once key was recorded is skipped, and
-- one not chained on the head as it stands then (the head moved, or the event it was chained on
-- did not land) is refused (carebound.audit._log: the events of a graph segment that ride
-- ahead of one round trip). The head is read once and written once, after the last event (with
-- the once keys of the events appended), and so is the run's anchor: the step is atomic, so
-- the result is that of appending them one by one.
--
-- KEYS: run stream, run head, run once-keys (read only)[, global index, anchors].
-- ARGV: genesis hash, run id, then six per event: expected seq, expected hash, new seq, new
--       hash, event JSON, once key ('' for none).
-- Reply: one reply per event, in order, each as audit_record.lua's.
local k = {KEYS[1], KEYS[2], KEYS[3]}
if #KEYS >= 5 then k[4], k[5] = KEYS[4], KEYS[5] end
local run_id = ARGV[2]
-- the head and the events' once marks in one read
local read = {'seq', 'hash'}
for i = 3, #ARGV, 6 do
  if ARGV[i + 5] ~= '' then read[#read + 1] = 'o:' .. ARGV[i + 5] end
end
local head = redis.call('HMGET', k[2], unpack(read))
local seq, hash = head[1], head[2]
local seen_once = {}  -- marked in the head, or appended here
for j = 3, #read do
  if head[j] then seen_once[read[j]] = true end
end
local head_fields = {}
local out = {}
for i = 3, #ARGV, 6 do
  local once_key = ARGV[i + 5]
  local once = once_key ~= '' and 'o:' .. once_key or nil
  if once and (seen_once[once] or redis.call('HEXISTS', k[3], once_key) == 1) then
    out[#out + 1] = {2, seq or '0', hash or ''}
  elseif (seq or '0') ~= ARGV[i] or (hash or ARGV[1]) ~= ARGV[i + 1] then
    out[#out + 1] = {0, seq or '0', hash or ARGV[1]}
  else
    seq, hash = ARGV[i + 2], ARGV[i + 3]
    out[#out + 1] = {1, audit_xadd(k, run_id, seq, ARGV[i + 4])}
    if once then
      seen_once[once] = true
      head_fields[#head_fields + 1] = once
      head_fields[#head_fields + 1] = ''
    end
  end
end
if seq ~= head[1] or hash ~= head[2] then
  redis.call('HSET', k[2], 'seq', seq, 'hash', hash, unpack(head_fields))
  if k[4] then redis.call('HSET', k[5], run_id, seq .. ':' .. hash) end
end
return out
