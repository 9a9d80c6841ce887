-- Append several events to one run's hash-chained audit stream in one step, in order: each
-- exactly as audit_record.lua appends one (no guard), so an event chained on one that did not
-- land finds the head moved (carebound.audit._log: the events of a graph segment that ride
-- ahead of one round trip).
--
-- KEYS: run stream, run head, run once-keys (read only)[, global index, anchors].
-- ARGV: genesis hash, run id, then six per event: expected seq, expected hash, new seq, new
--       hash, event JSON, once key ('' for none).
-- Reply: one reply per event, in order, each as audit_record.lua's.
local k = {KEYS[1], KEYS[2], KEYS[3]}
if #KEYS >= 5 then k[4], k[5] = KEYS[4], KEYS[5] end
local out = {}
for i = 3, #ARGV, 6 do
  local e = {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]}
  out[#out + 1] = audit_append(k, e, ARGV[1], ARGV[2], nil)
end
return out
