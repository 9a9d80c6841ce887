"""The asynchronous saver, on ``redis.asyncio``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)

from carebound._async_wire import AsyncWire, async_binary_client
from carebound._wire import Arg, AsyncClient
from carebound.checkpoint import _scripts
from carebound.checkpoint._base import SaverCore, keep_signatures
from carebound.checkpoint._codec import fencing_token, restore_args, text
from carebound.checkpoint._listing import ListCursor
from carebound.state.keys import DEFAULT_PREFIX
from carebound.state.lua import Script, aeval_batched, aeval_many, aeval_script

_BATCH = 100
T = TypeVar("T")


class AsyncRedisSaver(SaverCore):
    """LangGraph checkpointer on plain Redis 7+ or Valkey (no modules), asynchronous.

    The same key space and guarantees as :class:`carebound.checkpoint.RedisSaver`: one
    atomic Lua script (one round trip) per ``aput`` and ``aput_writes``, one per
    ``aget_tuple``; fencing with ``configurable.fencing_token``; optional ``ttl``.

    The sync methods (``get_tuple``, ``put``, ...) run the async ones on the saver's event
    loop and may only be called from another thread, as with langgraph's async savers.

    Args:
        client: a ``redis.asyncio.Redis`` client (``decode_responses`` may be either) or a
            ``redis.asyncio.RedisCluster`` created with ``decode_responses=False``.
        prefix: first part of every key (see :mod:`carebound.state.keys`).
        ttl: seconds of retention: each write refreshes the TTL of every key of the thread.
        compress: store large values deflated (see :class:`RedisSaver`); off by default.

    Example::

        async with AsyncRedisSaver.from_url("redis://localhost:6379/0") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "run-1"}})
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int | None = None,
        compress: bool = False,
    ) -> None:
        super().__init__(prefix=prefix, ttl=ttl, compress=compress)
        self._client, self._owns_client = async_binary_client(client)
        self._wire = AsyncWire(self._client)
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int | None = None,
        compress: bool = False,
        **client_kwargs: Any,
    ) -> AsyncIterator[AsyncRedisSaver]:
        """Async context manager: a saver on a new client for ``url``, closed on exit.

        Like langgraph's ``AsyncPostgresSaver.from_conn_string``; extra keyword arguments go
        to ``redis.asyncio.Redis.from_url``.
        """
        client = aioredis.Redis.from_url(url, **{**client_kwargs, "decode_responses": False})
        saver = cls(client, prefix=prefix, ttl=ttl, compress=compress)
        try:
            yield saver
        finally:
            await saver.aclose()
            await client.aclose()

    async def aclose(self) -> None:
        """Return borrowed connections; close the client the saver created for itself, if any
        (never the caller's)."""
        await self._wire.aclose()
        if self._owns_client:
            await self._client.aclose()

    # -- I/O helpers -------------------------------------------------------------------

    def _note_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    async def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        self._note_loop()
        return await aeval_script(self._wire, script, keys, args)

    async def _write(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
        config: RunnableConfig,
    ) -> None:
        thread_id: str = config["configurable"]["thread_id"]
        register = self._registry_due(thread_id)
        if register:
            self._note_loop()
            also = [self._register_command(thread_id)]
            reply = (await aeval_many(self._wire, [(script, keys, args)], also))[0]
            self._registry_written(thread_id)
        else:
            reply = await self._eval(script, keys, args)
        if reply[0] == 0:
            raise self._lease_lost(thread_id, fencing_token(config), reply[1])
        if reply[1] == 1 and not register:
            # The thread was deleted or expired behind this process's back: register again.
            await self._wire.call(self._register_command(thread_id))
            self._registry_written(thread_id)

    async def _all_threads(self) -> list[str]:
        stale = self._registry_stale_before()
        if stale is not None:
            await self._wire.call(["ZREMRANGEBYSCORE", self._registry, "-inf", f"({stale}"])
        members = await self._wire.call(["ZRANGE", self._registry, 0, -1])
        return [text(t) for t in members]

    async def _namespaces(self, thread_id: str) -> list[str]:
        tkeys = self._thread(thread_id)
        members = await self._eval(_scripts.NAMESPACES, [tkeys.namespaces, tkeys.packed], [])
        return sorted(text(m) for m in members)

    # -- async API ---------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the newest one without a checkpoint_id),
        with its pending writes, in one round trip; None when there is none."""
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        checkpoint_ns: str = conf.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        _, nkeys = self._keys(thread_id, checkpoint_ns)
        entries = await self._eval(_scripts.LOAD, nkeys, [checkpoint_id or "", "+", 1])
        if not entries:
            return None
        return self._codec.decode_tuple(
            thread_id, checkpoint_ns, entries[0], config if checkpoint_id else None
        )

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, filtered like InMemorySaver.list.

        With ``config=None`` every registered thread is listed.
        """
        cursor = ListCursor(self._codec, config, filter=filter, before=before, limit=limit)
        threads = [config["configurable"]["thread_id"]] if config else await self._all_threads()
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        for thread_id in threads:
            namespaces = [wanted_ns] if wanted_ns is not None else await self._namespaces(thread_id)
            for checkpoint_ns in namespaces:
                if cursor.exhausted:
                    return
                _, nkeys = self._keys(thread_id, checkpoint_ns)
                cursor.start()
                while (argv := cursor.next_args()) is not None:
                    entries = await self._eval(_scripts.LOAD, nkeys, argv)
                    for item in cursor.accept(thread_id, checkpoint_ns, entries):
                        yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values atomically, in one round trip."""
        (keys, args), stored = self._put_call(config, checkpoint, metadata, new_versions)
        await self._write(_scripts.PUT, keys, args, config)
        return stored

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against a checkpoint atomically, in one round trip."""
        keys, args = self._put_writes_call(config, writes, task_id, task_path)
        await self._write(_scripts.PUT_WRITES, keys, args, config)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint key of the thread and its registry entry.

        The run's lease hash is not touched: it belongs to the lease code.
        """
        tkeys = self._thread(thread_id)
        self._note_loop()
        delete = (_scripts.DELETE_THREAD, [tkeys.namespaces, tkeys.runs], [tkeys.base])
        await aeval_many(self._wire, [delete], [["ZREM", self._registry, thread_id]])
        self._registered.pop(thread_id, None)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) created by the given runs.

        Walks the thread registry: an administrative operation, not for hot paths.
        """
        if not run_ids:
            return
        calls = []
        for thread_id in await self._all_threads():
            tkeys = self._thread(thread_id)
            calls.append(([tkeys.namespaces, tkeys.runs], [tkeys.base, *run_ids]))
        await aeval_batched(self._wire, _scripts.DELETE_FOR_RUNS, calls)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (merged into it)."""
        src = self._thread(source_thread_id)
        dump = await self._eval(_scripts.DUMP_THREAD, [src.namespaces], [src.base])
        if not dump:
            return
        dst = self._thread(target_thread_id)
        args = restore_args(dst.base, self._ttl_arg, dump)
        await self._eval(_scripts.RESTORE_THREAD, [dst.namespaces, dst.runs], args)
        await self._wire.call(self._register_command(target_thread_id))
        self._registry_written(target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint per namespace (``"keep_latest"``) or delete all
        (``"delete"``).

        ``keep_latest`` drops the history a ``DeltaChannel`` would need to rebuild its value.
        """
        if strategy == "delete":
            for thread_id in thread_ids:
                await self.adelete_thread(thread_id)
            return
        if strategy != "keep_latest":
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        calls = []
        for thread_id in thread_ids:
            tkeys = self._thread(thread_id)
            calls.append(([tkeys.namespaces, tkeys.runs], [tkeys.base]))
        await aeval_batched(self._wire, _scripts.PRUNE_KEEP_LATEST, calls)

    # -- sync API: the async calls, run on the saver's loop from another thread ---------

    def _run_sync(self, call: Callable[[], Awaitable[T]], method: str) -> T:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise asyncio.InvalidStateError(
                f"AsyncRedisSaver.{method} needs the saver's event loop: create the saver "
                "inside a running loop, or use RedisSaver for synchronous code"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise asyncio.InvalidStateError(
                f"synchronous AsyncRedisSaver.{method} called from the event loop thread: "
                f"use `await checkpointer.a{method}(...)` or `await graph.ainvoke(...)`"
            )

        async def run() -> T:
            return await call()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Blocking ``aget_tuple``, for calls from a thread other than the saver's loop."""
        return self._run_sync(lambda: self.aget_tuple(config), "get_tuple")

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Blocking ``alist``, for calls from a thread other than the saver's loop."""

        async def collect() -> list[CheckpointTuple]:
            return [
                item async for item in self.alist(config, filter=filter, before=before, limit=limit)
            ]

        yield from self._run_sync(collect, "list")

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Blocking ``aput``, for calls from a thread other than the saver's loop."""
        return self._run_sync(lambda: self.aput(config, checkpoint, metadata, new_versions), "put")

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Blocking ``aput_writes``, for calls from a thread other than the saver's loop."""
        self._run_sync(lambda: self.aput_writes(config, writes, task_id, task_path), "put_writes")

    def delete_thread(self, thread_id: str) -> None:
        """Blocking ``adelete_thread``, for calls from a thread other than the saver's loop."""
        self._run_sync(lambda: self.adelete_thread(thread_id), "delete_thread")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Blocking ``adelete_for_runs``, for calls from a thread other than the saver's loop."""
        self._run_sync(lambda: self.adelete_for_runs(run_ids), "delete_for_runs")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Blocking ``acopy_thread``, for calls from a thread other than the saver's loop."""
        self._run_sync(lambda: self.acopy_thread(source_thread_id, target_thread_id), "copy_thread")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Blocking ``aprune``, for calls from a thread other than the saver's loop."""
        self._run_sync(lambda: self.aprune(thread_ids, strategy=strategy), "prune")


keep_signatures(AsyncRedisSaver.put_writes, AsyncRedisSaver.aput_writes)
