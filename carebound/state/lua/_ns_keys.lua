-- Helper ns_keys: the five keys of one checkpoint namespace of a thread
-- (ids, rec, blob, w, wx), from the thread's key base.
local function ns_keys(base, ns)
  return {base .. 'ids:' .. ns, base .. 'rec:' .. ns, base .. 'blob:' .. ns,
          base .. 'w:' .. ns, base .. 'wx:' .. ns}
end
