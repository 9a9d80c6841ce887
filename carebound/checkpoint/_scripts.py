"""The Lua scripts behind the savers: each touches one thread's keys only (one hash tag).

Every script gets the thread's key base ``<prefix>:{<thread_id>}:cp:`` and derives the
per-namespace keys from it (see :mod:`carebound.checkpoint._layout`); all of them share the
thread's hash tag, so a script stays inside one Redis Cluster slot.

Stored shapes (``N`` is a checkpoint namespace, ``\\0`` a NUL byte)::

    ns          SET    namespaces of the thread (also: "the thread exists")
    runs        ZSET   "<run_id>\\0<N>\\0<checkpoint_id>", score 0 (for delete_for_runs)
    ids:<N>     ZSET   checkpoint ids, score 0: lexical order is time order (uuid6)
    rec:<N>     HASH   <cid> -> "<serde type>\\0<serde bytes>" of {c: checkpoint sans
                       channel values, m: metadata, p: parent id}
                       <cid>\\0r -> msgpack [run_id or "", blob fields of the checkpoint...]
    blob:<N>    HASH   "<channel>\\0<version>" -> "<serde type>\\0<bytes>" (type "empty": none)
    w:<N>       HASH   "<cid>\\0<task_id>\\0<idx>" -> "<task_path>\\0<channel>\\0<type>\\0<bytes>"
    wx:<N>      ZSET   the same fields, score 0, so one checkpoint's writes are a lex range

A script that writes first checks the fencing token when one is given, and refuses (returns
``{0, current_token}``) before changing anything.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Helper functions; each script gets only the ones it calls (see _script).
_PRELUDE = {
    "ns_keys": r"""
local function ns_keys(base, ns)
  return {base .. 'ids:' .. ns, base .. 'rec:' .. ns, base .. 'blob:' .. ns,
          base .. 'w:' .. ns, base .. 'wx:' .. ns}
end
""",
    "fence": r"""
local function fence(lease, token)
  if token == '' then return nil end
  local cur = redis.call('HGET', lease, 'token')
  if cur == token then return nil end
  return {0, cur or ''}
end
""",
    "refresh_ttl": r"""
local function refresh_ttl(base, nsset, runs, ttl)
  if ttl <= 0 then return end
  redis.call('EXPIRE', nsset, ttl)
  redis.call('EXPIRE', runs, ttl)
  for _, ns in ipairs(redis.call('SMEMBERS', nsset)) do
    for _, k in ipairs(ns_keys(base, ns)) do redis.call('EXPIRE', k, ttl) end
  end
end
""",
    "call_chunked": r"""
local function call_chunked(cmd, key, list, step, first)
  local n = #list
  local i = first or 1
  while i <= n do
    local j = math.min(i + step - 1, n)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end
""",
    "writes_of": r"""
local function writes_of(k, cid)
  return redis.call('ZRANGEBYLEX', k[5], '[' .. cid .. '\0', '(' .. cid .. '\1')
end
""",
    "drop_writes": r"""
local function drop_writes(k, fields)
  if #fields > 0 then
    call_chunked('HDEL', k[4], fields, 500)
    call_chunked('ZREM', k[5], fields, 500)
  end
end
""",
    "drop_checkpoint": r"""
local function drop_checkpoint(base, runs, ns, cid)
  local k = ns_keys(base, ns)
  local meta = redis.call('HGET', k[2], cid .. '\0r')
  if meta then
    local run = cmsgpack.unpack(meta)[1]
    if run ~= '' then redis.call('ZREM', runs, run .. '\0' .. ns .. '\0' .. cid) end
  end
  redis.call('ZREM', k[1], cid)
  redis.call('HDEL', k[2], cid, cid .. '\0r')
  drop_writes(k, writes_of(k, cid))
end
""",
    "gc_blobs": r"""
-- Remove channel blobs that no remaining checkpoint of the namespace refers to.
local function gc_blobs(base, ns)
  local k = ns_keys(base, ns)
  local keep = {}
  for _, cid in ipairs(redis.call('ZRANGEBYLEX', k[1], '-', '+')) do
    local meta = redis.call('HGET', k[2], cid .. '\0r')
    if meta then
      local m = cmsgpack.unpack(meta)
      for i = 2, #m do keep[m[i]] = true end
    end
  end
  local dead = {}
  for _, f in ipairs(redis.call('HKEYS', k[3])) do
    if not keep[f] then table.insert(dead, f) end
  end
  if #dead > 0 then call_chunked('HDEL', k[3], dead, 500) end
end
""",
}

# KEYS: ns, ids, rec, blob, lease, runs
# ARGV: ns, cid, record, meta, fencing token or '', ttl, key base, run member or '',
#       then blob field/value pairs.
_PUT = r"""
local refused = fence(KEYS[5], ARGV[5])
if refused then return refused end
local new = redis.call('EXISTS', KEYS[1]) == 0
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3], ARGV[2] .. '\0r', ARGV[4])
if #ARGV > 8 then call_chunked('HSET', KEYS[4], ARGV, 400, 9) end
if ARGV[8] ~= '' then redis.call('ZADD', KEYS[6], 0, ARGV[8]) end
refresh_ttl(ARGV[7], KEYS[1], KEYS[6], tonumber(ARGV[6]))
return {1, new and 1 or 0}
"""

# KEYS: ns, w, wx, lease, runs
# ARGV: ns, fencing token or '', ttl, key base, then (field, value, overwrite 1|0) triples.
_PUT_WRITES = r"""
local refused = fence(KEYS[4], ARGV[2])
if refused then return refused end
local new = redis.call('EXISTS', KEYS[1]) == 0
redis.call('SADD', KEYS[1], ARGV[1])
local index = {}
for i = 5, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  else
    redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  table.insert(index, 0)
  table.insert(index, ARGV[i])
end
if #index > 0 then call_chunked('ZADD', KEYS[3], index, 400) end
refresh_ttl(ARGV[4], KEYS[1], KEYS[5], tonumber(ARGV[3]))
return {1, new and 1 or 0}
"""

# KEYS: ids, rec, blob, w, wx
# ARGV: cid ('' = take from the index), max lex bound ('+' or '(<cid>'), count
# Returns a list of {cid, record, meta, blob values, write fields, write values}.
_LOAD = r"""
local cids
if ARGV[1] ~= '' then
  cids = {ARGV[1]}
else
  cids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], '-', 'LIMIT', 0, tonumber(ARGV[3]))
end
local k = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}
local out = {}
for _, cid in ipairs(cids) do
  local rec = redis.call('HMGET', KEYS[2], cid, cid .. '\0r')
  if rec[1] then
    local meta = cmsgpack.unpack(rec[2])
    local blobs = {}
    if #meta > 1 then blobs = redis.call('HMGET', KEYS[3], unpack(meta, 2)) end
    local wf = writes_of(k, cid)
    local wv = {}
    if #wf > 0 then wv = redis.call('HMGET', KEYS[4], unpack(wf)) end
    table.insert(out, {cid, rec[1], rec[2], blobs, wf, wv})
  end
end
return out
"""

# KEYS: ns, runs.  ARGV: key base.  Removes every checkpoint key of the thread.
_DELETE_THREAD = r"""
local n = 0
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', unpack(ns_keys(ARGV[1], ns)))
end
return n + redis.call('DEL', KEYS[1], KEYS[2])
"""

# KEYS: ns, runs.  ARGV: key base.  Keeps the newest checkpoint of every namespace.
_PRUNE_KEEP_LATEST = r"""
local base = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ns_keys(base, ns)
  local latest = redis.call('ZREVRANGEBYLEX', k[1], '+', '-', 'LIMIT', 0, 1)[1]
  if latest then
    for _, cid in ipairs(redis.call('ZRANGEBYLEX', k[1], '-', '(' .. latest)) do
      drop_checkpoint(base, KEYS[2], ns, cid)
    end
    -- writes stored against checkpoints that were never put
    drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '-', '(' .. latest .. '\0'))
    drop_writes(k, redis.call('ZRANGEBYLEX', k[5], '[' .. latest .. '\1', '+'))
    gc_blobs(base, ns)
  else
    redis.call('DEL', unpack(k))
    redis.call('SREM', KEYS[1], ns)
  end
end
return 1
"""

# KEYS: ns, runs.  ARGV: key base, run ids...
_DELETE_FOR_RUNS = r"""
local base = ARGV[1]
local touched = {}
local n = 0
for i = 2, #ARGV do
  local run = ARGV[i]
  local members = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. run .. '\0', '(' .. run .. '\1')
  for _, m in ipairs(members) do
    local ns, cid = string.match(string.sub(m, #run + 2), '^(.*)%z([^%z]*)$')
    if ns then
      drop_checkpoint(base, KEYS[2], ns, cid)
      touched[ns] = true
      n = n + 1
    end
    redis.call('ZREM', KEYS[2], m)
  end
end
for ns, _ in pairs(touched) do gc_blobs(base, ns) end
return n
"""

# KEYS: ns.  ARGV: key base.
# Returns {ns, rec fields+values, blob fields+values, write fields+values} per namespace.
_DUMP_THREAD = r"""
local out = {}
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ns_keys(ARGV[1], ns)
  table.insert(out, {ns, redis.call('HGETALL', k[2]), redis.call('HGETALL', k[3]),
                     redis.call('HGETALL', k[4])})
end
return out
"""

# KEYS: ns, runs.  ARGV: key base, ttl, then per namespace:
#   ns, #cids, #blob pairs, #write pairs, (cid, record, meta, run member or '')...,
#   (blob field, value)..., (write field, value)...
_RESTORE_THREAD = r"""
local base = ARGV[1]
local i = 3
while i <= #ARGV do
  local ns = ARGV[i]
  local ncp, nblob, nw = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local k = ns_keys(base, ns)
  redis.call('SADD', KEYS[1], ns)
  i = i + 4
  for _ = 1, ncp do
    local cid = ARGV[i]
    redis.call('ZADD', k[1], 0, cid)
    redis.call('HSET', k[2], cid, ARGV[i + 1], cid .. '\0r', ARGV[i + 2])
    if ARGV[i + 3] ~= '' then redis.call('ZADD', KEYS[2], 0, ARGV[i + 3]) end
    i = i + 4
  end
  for _ = 1, nblob do
    redis.call('HSET', k[3], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  for _ = 1, nw do
    redis.call('HSET', k[4], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', k[5], 0, ARGV[i])
    i = i + 2
  end
end
refresh_ttl(base, KEYS[1], KEYS[2], tonumber(ARGV[2]))
return 1
"""


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, computed once so every call can go straight to EVALSHA."""

    name: str
    source: str
    sha: str


def _script(name: str, body: str) -> Script:
    """The script ``body`` preceded by the helper functions it calls (and theirs)."""
    used: set[str] = set()

    def need(text: str) -> None:
        for helper, code in _PRELUDE.items():
            if helper not in used and re.search(rf"\b{helper}\(", text):
                used.add(helper)
                need(code.split("\n", 1)[1])

    need(body)
    source = "".join(code for helper, code in _PRELUDE.items() if helper in used) + body
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


PUT = _script("put", _PUT)
PUT_WRITES = _script("put_writes", _PUT_WRITES)
LOAD = _script("load", _LOAD)
DELETE_THREAD = _script("delete_thread", _DELETE_THREAD)
PRUNE_KEEP_LATEST = _script("prune_keep_latest", _PRUNE_KEEP_LATEST)
DELETE_FOR_RUNS = _script("delete_for_runs", _DELETE_FOR_RUNS)
DUMP_THREAD = _script("dump_thread", _DUMP_THREAD)
RESTORE_THREAD = _script("restore_thread", _RESTORE_THREAD)
