"""The drive-scoped write buffer of :class:`~carebound.checkpoint.RedisSaver`: where its
``put`` and ``put_writes`` wait inside :meth:`BufferingSaver.buffered_writes`, and how they are
sent (at once, or riding ahead of the next round trip). What is kept and why it is sound:
:mod:`carebound.checkpoint._session`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig

from carebound._wire import Arg, SyncClient, SyncWire, ride_ahead
from carebound.checkpoint import _scripts
from carebound.checkpoint._session import Buffered, WriteBuffer
from carebound.checkpoint._threaded import ThreadedAsyncSaver
from carebound.state.lua import Script, eval_script
from carebound.state.pipeline import ride_script

Write = tuple[Script, Sequence[str], Sequence[Arg], RunnableConfig]
"""One write script call of a thread: the script, its KEYS, its ARGV and the writer's config."""


_WRITES_FIXED = 4
"""``checkpoint_put_writes.lua``'s ARGV before its triples: namespace, token, ttl, key base."""


def _joins(put: Write, writes: tuple[RunnableConfig, Sequence[str], Sequence[Arg]]) -> bool:
    """Whether ``writes`` (a ``put_writes`` call's config, KEYS and ARGV) can ride in one
    ``checkpoint_put_with_writes`` call with ``put``: against the checkpoint put, in its
    namespace, with its fencing token, TTL and key base."""
    _, _, put_args, put_config = put
    config, _, args = writes
    ns, token, ttl, base = args[:_WRITES_FIXED]
    return (
        config["configurable"].get("checkpoint_id") == put_args[1]
        and (ns, token, ttl, base) == (put_args[0], put_args[4], put_args[5], put_args[6])
        and put_config["configurable"]["thread_id"] == config["configurable"]["thread_id"]
    )


class _Held(NamedTuple):
    """The saver and the thread whose writes are buffered."""

    saver: BufferingSaver
    buffer: WriteBuffer


_HELD: ContextVar[_Held | None] = ContextVar("carebound_held_writes", default=None)


class BufferingSaver(ThreadedAsyncSaver):
    """The buffering half of :class:`~carebound.checkpoint.RedisSaver` (which sends)."""

    _client: SyncClient
    _owns_client: bool
    _wire: SyncWire

    def _write_many(self, thread_id: str, writes: Sequence[Write]) -> None:
        raise NotImplementedError

    def _check_write(
        self, thread_id: str, config: RunnableConfig, reply: Any, *, registered: bool
    ) -> None:
        raise NotImplementedError

    def _held(self, thread_id: str) -> _Held | None:
        held = _HELD.get()
        if held is None or held.saver is not self or held.buffer.thread_id != thread_id:
            return None
        return held

    def _buffered_calls(self, buffered: Buffered) -> list[Write]:
        """The write scripts that store what a buffer held (values as serialized when put,
        deflated now): a checkpoint and the writes against it in one script call
        (``checkpoint_put_with_writes.lua``: a packed thread is read and written once)."""
        put: Write | None = None
        if buffered.put is not None:
            config, checkpoint, metadata, moved, serialized = buffered.put
            (keys, args), _ = self._put_call(
                config, checkpoint, metadata, moved, serialized=serialized
            )
            put = (_scripts.PUT, keys, args, config)
        writes = [
            (config, *self._put_writes_call(config, writes, task_id, task_path))
            for config, writes, task_id, task_path in buffered.writes
        ]
        if put is not None and writes and all(_joins(put, w) for w in writes):
            _, put_keys, put_args, put_config = put
            triples = [arg for _, _, wargs in writes for arg in wargs[_WRITES_FIXED:]]
            both = [*put_keys, *writes[0][1][1:3]]  # the namespace's w and wx
            joined = [len(put_args), *put_args, *triples]
            return [(_scripts.PUT_WITH_WRITES, both, joined, put_config)]
        calls = [] if put is None else [put]
        calls += [(_scripts.PUT_WRITES, wkeys, wargs, wconfig) for wconfig, wkeys, wargs in writes]
        return calls

    def _flush_held(self, thread_id: str) -> None:
        """Send the writes buffered for ``thread_id`` now (before reading it back)."""
        held = self._held(thread_id)
        if held is not None and held.buffer:
            self._write_many(thread_id, self._buffered_calls(held.buffer.take()))

    def flush_ahead(self) -> None:
        """Make the checkpoint writes buffered by the current :meth:`buffered_writes` block
        durable before the next round trip carebound sends on the saver's client returns
        (``carebound.state.pipeline.run``, a saver's script, an audit append: whatever goes
        through ``carebound._wire``; a plain redis-py call does not carry them): inside a
        ``carebound._wire.riding`` block, on a client the saver shares, they ride ahead of
        it; else they are sent now. Either way they are fenced: a refused write raises
        :class:`carebound._errors.LeaseLostError` before that round trip's reply is handed
        back.

        carebound calls it right before an external effect's ledger reserve and before a hold
        is parked (both sent through ``pipeline.run``), so each pair shares one round trip,
        and when a graph segment ends (its writes ride the trip that settles the run).
        """
        held = _HELD.get()
        if held is None or held.saver is not self or not held.buffer:
            return
        thread_id = held.buffer.thread_id
        calls = self._buffered_calls(held.buffer.take())
        if self._owns_client or not self._ride(thread_id, calls):
            self._write_many(thread_id, calls)

    def _ride(self, thread_id: str, calls: Sequence[Write]) -> bool:
        """Queue ``calls`` to ride ahead of the next round trip on the saver's client; False,
        and nothing queued, outside a riding block."""
        register = self._registry_due(thread_id)
        if register and not ride_ahead(
            self._client,
            self._register_command(thread_id),
            lambda _reply: self._registry_written(thread_id),
        ):
            return False
        for script, keys, args, config in calls:

            def landed(reply: Any, call: Write = (script, keys, args, config)) -> None:
                if reply is None:  # the server lost the script: nothing ran, run it now
                    reply = eval_script(self._wire, call[0], call[1], call[2])
                self._check_write(thread_id, call[3], reply, registered=register)

            if not ride_script(self._client, script, keys, args, landed):  # type: ignore[arg-type]
                return False  # pragma: no cover - riding cannot end between two calls
        return True

    @contextmanager
    def buffered_writes(self, thread_id: str) -> Iterator[WriteBuffer]:
        """Within this block, on this (OS) thread, ``put`` and ``put_writes`` of ``thread_id``
        (root namespace) are buffered instead of sent: only the newest checkpoint, the values
        of the channels that moved since the last send and the writes against the newest
        checkpoint are kept (:mod:`carebound.checkpoint._session`). They are sent, in one
        round trip, by :meth:`flush_ahead`, before a read of the thread, with any other
        write of it, and when the block ends (an error inside the block included).

        Only for a writer that alone writes the thread meanwhile (carebound's drives, under
        the run's lease) and that calls :meth:`flush_ahead` before anything outside the
        thread depends on its state: a crash loses the buffered steps, which must be safe
        to run again. Every other use of the saver writes each call at once.
        """
        buffer = WriteBuffer(thread_id)
        token = _HELD.set(_Held(self, buffer))
        try:
            yield buffer
        finally:
            _HELD.reset(token)
            if buffer:
                # ERROR writes of a failed step are kept too; a failure here surfaces
                # (chained to the step's own error, if any).
                self._write_many(thread_id, self._buffered_calls(buffer.take()))
