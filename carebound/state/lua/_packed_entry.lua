-- Helper packed_entry: for a write fenced by the run's lease (token not ''), the thread's packed
-- entries (pack_thread's shape) and the index of namespace ns among them; nil when the write is
-- not fenced, the thread is not packed or ns has no entry (the caller unpacks the thread then).
-- Only carebound's drives fence their writes, and they keep only a run's newest checkpoint at
-- every stop: their writes keep the thread packed; any other writer's history grows unpacked.
local function packed_entry(base, ns, token)
  if token == '' then return nil end
  local raw = redis.call('GET', base .. 'pk')
  if not raw then return nil end
  local entries = cmsgpack.unpack(raw)
  for i = 2, #entries do
    if entries[i][1] == ns then return entries, i end
  end
  return nil
end
