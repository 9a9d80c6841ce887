-- Read a hold as a view needs it (carebound.approvals): its record's fields and its request.
-- KEYS: the approval record (hash), its request (string: holds parked before kept the request
--       in the record's 'request' field, as an edit of a two-person hold still does)
-- ARGV: the record's fields to read
-- Reply: {the fields' values (HMGET), the request key's value or false}
return {redis.call('HMGET', KEYS[1], unpack(ARGV)), redis.call('GET', KEYS[2])}
