-- Helper fence: nil when the fencing token is '' or still the lease's token; else the
-- refusal reply {0, current token}.
local function fence(lease, token)
  if token == '' then return nil end
  local cur = redis.call('HGET', lease, 'token')
  if cur == token then return nil end
  return {0, cur or ''}
end
