"""The synchronous saver, on the blocking ``redis`` client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)

from carebound._wire import Arg, SyncClient, SyncWire, binary_client, shared_wire
from carebound.checkpoint import _scripts
from carebound.checkpoint._base import keep_signatures
from carebound.checkpoint._buffering import _HELD, BufferingSaver, Write
from carebound.checkpoint._codec import fencing_token, restore_args, text
from carebound.checkpoint._listing import ListCursor
from carebound.state.keys import DEFAULT_PREFIX
from carebound.state.lua import Script, eval_batched, eval_many, eval_script

_PRIMED: ContextVar[list[Any] | None] = ContextVar("carebound_primed_checkpoint", default=None)
"""[saver, thread_id, reply]: a list, emptied once this process writes the thread, so that copies
of the context made inside the block (LangGraph runs calls in copies) see it spent too."""


class RedisSaver(BufferingSaver):
    """LangGraph checkpointer on plain Redis 7+ or Valkey (no modules), synchronous.

    Every key of a thread carries the hash tag ``{thread_id}``, so each write is one atomic
    Lua script in one Redis Cluster slot: ``put`` and ``put_writes`` are one round trip each,
    ``get_tuple`` is one. The thread registry used by ``list(None)`` is the only global key
    and is written on its own (pipelined with the thread's first write, not in a transaction).

    Args:
        client: a ``redis.Redis`` client (``decode_responses`` may be either: the saver reads
            bytes through a sibling client when it is True) or a ``RedisCluster`` created with
            ``decode_responses=False``. The saver keeps the few connections it uses from the
            client's pool until :meth:`close`.
        prefix: first part of every key (see :mod:`carebound.state.keys`).
        ttl: seconds of retention: each write refreshes the TTL of every key of the thread.
        compress: store serialized values of ``COMPRESS_AT`` (256) bytes or more deflated
            (zlib): about a third of the bytes for about 10% more CPU per write. Off by default
            (a graph of yours keeps LangGraph's usual speed); carebound's runs turn it on.
        Values stored deflated read back whichever way a saver is made.

    Fencing: when ``config["configurable"]["fencing_token"]`` (int) is set, ``put`` and
    ``put_writes`` compare it with the ``token`` field of the run's lease hash
    (:func:`carebound.state.keys.lease_key`) in the same atomic step and raise
    :class:`carebound._errors.LeaseLostError` instead of writing when it differs or the
    lease is gone.

    Example::

        with RedisSaver.from_url("redis://localhost:6379/0") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "run-1"}}, durability="sync")
    """

    def __init__(
        self,
        client: SyncClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int | None = None,
        compress: bool = False,
    ) -> None:
        super().__init__(prefix=prefix, ttl=ttl, compress=compress)
        self._client, self._owns_client = binary_client(client)
        self._wire = SyncWire(self._client) if self._owns_client else shared_wire(self._client)

    @classmethod
    @contextmanager
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int | None = None,
        compress: bool = False,
        **client_kwargs: Any,
    ) -> Iterator[RedisSaver]:
        """Context manager: a saver on a new client for ``url``, closed on exit.

        Like langgraph's ``PostgresSaver.from_conn_string``; extra keyword arguments go to
        ``redis.Redis.from_url``.
        """
        client = redis.Redis.from_url(url, **{**client_kwargs, "decode_responses": False})
        saver = cls(client, prefix=prefix, ttl=ttl, compress=compress)
        try:
            yield saver
        finally:
            saver.close()
            client.close()

    def close(self) -> None:
        """Return borrowed connections; close the client the saver created for itself, if any
        (never the caller's). On the caller's client the saver uses the client's shared wire,
        whose idle connections go back to the pool."""
        self._wire.close()
        if self._owns_client:
            self._client.close()

    # -- I/O helpers -------------------------------------------------------------------

    def _write(
        self, script: Script, keys: Sequence[str], args: Sequence[Arg], config: RunnableConfig
    ) -> None:
        """Run a write script: one round trip, with the registry entry pipelined when due
        and, inside :meth:`buffered_writes`, the thread's buffered writes ahead of it."""
        thread_id: str = config["configurable"]["thread_id"]
        self._unprime(thread_id)
        held = self._held(thread_id)
        if held is not None and held.buffer:
            calls = self._buffered_calls(held.buffer.take())
            self._write_many(thread_id, [*calls, (script, keys, args, config)])
            return
        register = self._registry_due(thread_id)
        if register:
            also = [self._register_command(thread_id)]
            reply = eval_many(self._wire, [(script, keys, args)], also)[0]
            self._registry_written(thread_id)
        else:
            reply = eval_script(self._wire, script, keys, args)
        self._check_write(thread_id, config, reply, registered=register)

    def _write_many(self, thread_id: str, writes: Sequence[Write]) -> None:
        """Write scripts of one thread (one or more) in one round trip, in order."""
        register = self._registry_due(thread_id)
        also = [self._register_command(thread_id)] if register else []
        calls = [(script, keys, args) for script, keys, args, _ in writes]
        replies = eval_many(self._wire, calls, also)  # every write script is idempotent
        if register:
            self._registry_written(thread_id)
        for (_, _, _, config), reply in zip(writes, replies, strict=False):
            self._check_write(thread_id, config, reply, registered=register)

    def _check_write(
        self, thread_id: str, config: RunnableConfig, reply: Any, *, registered: bool
    ) -> None:
        if reply[0] == 0:
            raise self._lease_lost(thread_id, fencing_token(config), reply[1])
        if reply[1] == 1 and not registered:
            # The thread was deleted or expired behind this process's back: register again.
            self._wire.call(self._register_command(thread_id))
            self._registry_written(thread_id)

    def _all_threads(self) -> list[str]:
        stale = self._registry_stale_before()
        if stale is not None:
            self._wire.call(["ZREMRANGEBYSCORE", self._registry, "-inf", f"({stale}"])
        members = self._wire.call(["ZRANGE", self._registry, 0, -1])
        return [text(t) for t in members]

    def _namespaces(self, thread_id: str) -> list[str]:
        tkeys = self._thread(thread_id)
        members = eval_script(self._wire, _scripts.NAMESPACES, [tkeys.namespaces, tkeys.packed], [])
        return sorted(text(m) for m in members)

    # -- BaseCheckpointSaver -----------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the newest one without a checkpoint_id),
        with its pending writes, in one round trip (none inside :meth:`primed`); None when
        there is none."""
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        checkpoint_ns: str = conf.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        self._flush_held(thread_id)
        entries = self._take_primed(thread_id) if not checkpoint_id and not checkpoint_ns else None
        if entries is None:
            _, nkeys = self._keys(thread_id, checkpoint_ns)
            entries = eval_script(self._wire, _scripts.LOAD, nkeys, [checkpoint_id or "", "+", 1])
        if not entries:
            return None
        return self._codec.decode_tuple(
            thread_id, checkpoint_ns, entries[0], config if checkpoint_id else None
        )

    def queue_latest(self, pipe: redis.client.Pipeline, thread_id: str) -> bool:
        """Queue on ``pipe`` the read ``get_tuple`` makes for the thread's newest checkpoint
        (root namespace), to hand its reply to :meth:`primed`; False, and nothing queued,
        when the pipeline's client is not this saver's (it decodes replies to str)."""
        pool = getattr(pipe, "connection_pool", None)  # a cluster pipeline has none: not primed
        if pool is None or pool is not getattr(self._client, "connection_pool", None):
            return False
        _, nkeys = self._keys(thread_id, "")
        _scripts.LOAD.queue(pipe, nkeys, ["", "+", 1])
        return True

    def queue_compact(
        self, pipe: redis.client.Pipeline, thread_id: str, fencing_token: int
    ) -> None:
        """Queue on ``pipe`` the ``keep_latest`` prune of ``thread_id`` (every namespace keeps
        its newest checkpoint, that checkpoint's writes and the blobs it refers to), fenced like
        ``put``: nothing is dropped unless the run's lease still has ``fencing_token``. Its
        reply is ``[1, 0]``, or ``[0, current token]`` when fenced out.

        carebound compacts its own runs each time one stops (resuming needs only the newest
        checkpoint); a graph of yours keeps its full history unless you call :meth:`prune`.
        """
        tkeys = self._thread(thread_id)
        keys = [tkeys.namespaces, tkeys.runs, tkeys.lease]
        _scripts.COMPACT.queue(pipe, keys, [tkeys.base, str(fencing_token)])

    @contextmanager
    def primed(self, thread_id: str, reply: Any) -> Iterator[None]:
        """Within this block, on this (OS) thread, ``get_tuple`` of this thread's newest
        checkpoint is served from ``reply`` of :meth:`queue_latest` until this process writes
        the thread.

        Only for a reader that keeps others from writing the thread in between (carebound
        reads it under the run's lease, in the round trip that takes the lease).
        """
        if reply is None:  # nothing was read: get_tuple reads as usual
            yield
            return
        token = _PRIMED.set([self, thread_id, reply])
        try:
            yield
        finally:
            _PRIMED.reset(token)

    def _take_primed(self, thread_id: str) -> Any:
        primed = _PRIMED.get()
        if not primed or primed[0] is not self or primed[1] != thread_id:
            return None
        return primed[2]  # until this process writes the thread (_unprime)

    @staticmethod
    def _unprime(thread_id: str) -> None:
        primed = _PRIMED.get()
        if primed and primed[1] == thread_id:
            primed.clear()  # later reads see the run's own writes

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, filtered like InMemorySaver.list.

        With ``config=None`` every registered thread is listed.
        """
        held = _HELD.get()
        if held is not None and held.saver is self:
            self._flush_held(held.buffer.thread_id)
        cursor = ListCursor(self._codec, config, filter=filter, before=before, limit=limit)
        threads = [config["configurable"]["thread_id"]] if config else self._all_threads()
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        for thread_id in threads:
            namespaces = [wanted_ns] if wanted_ns is not None else self._namespaces(thread_id)
            for checkpoint_ns in namespaces:
                if cursor.exhausted:
                    return
                _, nkeys = self._keys(thread_id, checkpoint_ns)
                cursor.start()
                while (argv := cursor.next_args()) is not None:
                    entries = eval_script(self._wire, _scripts.LOAD, nkeys, argv)
                    yield from cursor.accept(thread_id, checkpoint_ns, entries)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values atomically, in one round trip
        (buffered inside :meth:`buffered_writes`)."""
        conf = config["configurable"]
        held = self._held(conf["thread_id"])
        if held is not None and not conf.get("checkpoint_ns", ""):
            self._unprime(held.buffer.thread_id)
            values = checkpoint["channel_values"]
            dumps = self._codec.serde.dumps_typed  # deflated when flushed, if ever
            serialized = {ch: dumps(values[ch]) for ch in new_versions if ch in values}
            held.buffer.hold_put(config, checkpoint, metadata, new_versions, serialized)
            return self._stored_config(config, checkpoint)
        (keys, args), stored = self._put_call(config, checkpoint, metadata, new_versions)
        self._write(_scripts.PUT, keys, args, config)
        return stored

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against a checkpoint atomically, in one round trip
        (buffered inside :meth:`buffered_writes`)."""
        held = self._held(config["configurable"]["thread_id"])
        if held is not None and held.buffer.holds_writes_for(config):
            self._unprime(held.buffer.thread_id)
            held.buffer.hold_writes(config, writes, task_id, task_path)
            return
        keys, args = self._put_writes_call(config, writes, task_id, task_path)
        self._write(_scripts.PUT_WRITES, keys, args, config)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint key of the thread and its registry entry.

        The run's lease hash is not touched: it belongs to the lease code.
        """
        tkeys = self._thread(thread_id)
        delete = (_scripts.DELETE_THREAD, [tkeys.namespaces, tkeys.runs], [tkeys.base])
        eval_many(self._wire, [delete], [["ZREM", self._registry, thread_id]])
        self._registered.pop(thread_id, None)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) created by the given runs.

        Walks the thread registry: an administrative operation, not for hot paths.
        """
        if not run_ids:
            return
        calls = []
        for thread_id in self._all_threads():
            tkeys = self._thread(thread_id)
            calls.append(([tkeys.namespaces, tkeys.runs], [tkeys.base, *run_ids]))
        eval_batched(self._wire, _scripts.DELETE_FOR_RUNS, calls)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (merged into it)."""
        src = self._thread(source_thread_id)
        dump = eval_script(self._wire, _scripts.DUMP_THREAD, [src.namespaces], [src.base])
        if not dump:
            return
        dst = self._thread(target_thread_id)
        args = restore_args(dst.base, self._ttl_arg, dump)
        eval_script(self._wire, _scripts.RESTORE_THREAD, [dst.namespaces, dst.runs], args)
        self._wire.call(self._register_command(target_thread_id))
        self._registry_written(target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint per namespace (``"keep_latest"``) or delete all
        (``"delete"``).

        ``keep_latest`` drops the history a ``DeltaChannel`` would need to rebuild its value.
        """
        if strategy == "delete":
            for thread_id in thread_ids:
                self.delete_thread(thread_id)
            return
        if strategy != "keep_latest":
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        calls = []
        for thread_id in thread_ids:
            tkeys = self._thread(thread_id)
            calls.append(([tkeys.namespaces, tkeys.runs], [tkeys.base]))
        eval_batched(self._wire, _scripts.PRUNE_KEEP_LATEST, calls)


keep_signatures(RedisSaver.put_writes)
