-- Helper drop_writes: delete pending-write fields from w and wx.
local function drop_writes(k, fields)
  if #fields > 0 then
    call_chunked('HDEL', k[4], fields, 500)
    call_chunked('ZREM', k[5], fields, 500)
  end
end
