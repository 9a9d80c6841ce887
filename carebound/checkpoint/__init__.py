"""LangGraph checkpointers on plain Redis 7+ / Valkey (no modules), sync and async.

``RedisSaver`` (blocking ``redis`` client) and ``AsyncRedisSaver`` (``redis.asyncio``) share
one key space: a thread written by one can be resumed by the other, in any process.

Construction, from a client you own or (like langgraph's ``from_conn_string``) as a context
manager that owns its client::

    saver = RedisSaver(redis.Redis.from_url(url), prefix="cb", ttl=None)

    with RedisSaver.from_url(url) as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": run_id}}, durability="sync")

    async with AsyncRedisSaver.from_url(url) as saver:
        await builder.compile(checkpointer=saver).ainvoke(inputs, config)

Guarantees:

* every key of a thread carries the hash tag ``{thread_id}``
  (:func:`carebound.state.keys.run_key`), so each write is one atomic Lua script inside one
  Redis Cluster slot; the thread registry (for ``list(None)``) is the only global key and is
  never part of a multi-key transaction;
* one round trip per ``put`` and per ``put_writes``, one per ``get_tuple``; no KEYS/SCAN;
* fencing: with ``configurable["fencing_token"]`` set, a write whose token differs from the
  ``token`` field of :func:`carebound.state.keys.lease_key` is refused atomically with
  :class:`carebound._errors.LeaseLostError`;
* ``ttl`` (seconds): every write refreshes the TTL of every key of the thread;
  ``delete_thread`` removes them all (the lease hash, owned by the lease code, stays);
* values are serialised with ``JsonPlusSerializer(pickle_fallback=False)``, never pickle;
* the semantics are InMemorySaver's, and the official conformance suite passes in full
  (put, put_writes, get_tuple, list, delete_thread, delete_for_runs, copy_thread, prune).

Install ``hiredis`` (the ``bench`` extra has it) for a faster reply parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound.checkpoint._async import AsyncRedisSaver as AsyncRedisSaver
    from carebound.checkpoint._sync import RedisSaver as RedisSaver

__all__ = ["AsyncRedisSaver", "RedisSaver"]


def __getattr__(name: str) -> Any:
    # The savers load LangGraph; they are imported on first use so that reading a checkpoint
    # without LangGraph (``carebound.checkpoint._peek``, for read-only commands) stays light.
    if name == "RedisSaver":
        from carebound.checkpoint._sync import RedisSaver

        return RedisSaver
    if name == "AsyncRedisSaver":
        from carebound.checkpoint._async import AsyncRedisSaver

        return AsyncRedisSaver
    raise AttributeError(f"module 'carebound.checkpoint' has no attribute {name!r}")
