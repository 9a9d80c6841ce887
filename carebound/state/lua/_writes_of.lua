-- Helper writes_of: the pending-write fields of one checkpoint (a lex range of wx).
local function writes_of(k, cid)
  return redis.call('ZRANGEBYLEX', k[5], '[' .. cid .. '\0', '(' .. cid .. '\1')
end
