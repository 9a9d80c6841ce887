"""The Lua scripts behind the savers (``carebound/lua/checkpoint_*.lua``): each touches
one thread's keys only (one hash tag).

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
    pk          STRING a compacted thread (the engine's own runs, once they stop) in one value,
                       in place of all the keys above but runs: msgpack [1, [N, cid, record,
                       meta, blob values in meta's order (false: none), write fields, write
                       values]...] (``_pack_thread.lua``); a write fenced by the run's lease
                       (the engine's next drive) changes it in place, as compaction would
                       leave it (``_put_packed.lua``, ``_add_packed_writes.lua``); any other
                       write, and a prune, unpacks it first; ``load`` reads it as it is

A script that writes first checks the fencing token when one is given, and refuses (returns
``{0, current_token}``) before changing anything.
"""

from __future__ import annotations

from carebound.state.lua import Script, script

__all__ = [
    "COMPACT",
    "DELETE_FOR_RUNS",
    "DELETE_THREAD",
    "DUMP_THREAD",
    "LOAD",
    "NAMESPACES",
    "PRUNE_KEEP_LATEST",
    "PUT",
    "PUT_WITH_WRITES",
    "PUT_WRITES",
    "RESTORE_THREAD",
    "Script",
]

PUT = script("checkpoint_put")
PUT_WRITES = script("checkpoint_put_writes")
PUT_WITH_WRITES = script("checkpoint_put_with_writes")
LOAD = script("checkpoint_load")
NAMESPACES = script("checkpoint_namespaces")
DELETE_THREAD = script("checkpoint_delete_thread")
PRUNE_KEEP_LATEST = script("checkpoint_prune_keep_latest")
COMPACT = script("checkpoint_compact")
DELETE_FOR_RUNS = script("checkpoint_delete_for_runs")
DUMP_THREAD = script("checkpoint_dump_thread")
RESTORE_THREAD = script("checkpoint_restore_thread")
