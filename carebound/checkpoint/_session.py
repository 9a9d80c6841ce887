"""A drive's checkpoint writes, buffered until something must find them durable.

carebound drives one run at a time under its lease, at ``durability="sync"``: LangGraph puts a
checkpoint after every super-step (about 21 for a ``referral_intake`` start), and carebound
keeps only each run's newest checkpoint once the drive stops (``checkpoint_compact.lua``). Every
checkpoint before the newest is therefore superseded before anyone needs it, unless something
outside the run depends on the state it records. Inside :meth:`RedisSaver.buffered_writes` a
thread's ``put`` and ``put_writes`` are kept here instead of being sent, with only what the
newest checkpoint needs:

* the newest checkpoint (its record and metadata);
* the channels whose versions moved since the last flush, stored with the newest checkpoint's
  versions and the values they had when put (``hold_put``);
* the writes against the newest checkpoint (writes against an older one are superseded with it).

A checkpoint's values are serialized when put, not when flushed: LangGraph's checkpoint holds the
channels' own objects, which the next step's nodes may change in place before the flush
(``tests/test_buffered_values``); a channel that moved three times is serialized three times,
and only its newest bytes are deflated (when large) and sent, when flushed. A task's writes are
serialized when sent (``hold_writes``).
The buffer is flushed (one fenced round trip, riding ahead of the caller's own round trip where
it can):

* before an external effect: the effect ledger's reserve (``execute``), and before a hold is
  parked where reviewers see it;
* when the graph segment ends (a park, the end, an error), before its queued event is consumed;
* before any read of the thread (``get_tuple``, ``list``) and when the block ends.

Why it is sound: no external effect happens between two flushes, so a crash loses only planning
steps, which replay reaches again from the last flushed checkpoint (LangGraph re-runs a node from
its start anyway); the effect a replay reaches again finds its result in the effect ledger. A hold
is flushed before it is parked, so a planner that would plan differently on replay (a model) can
never leave a reviewer deciding a call its run no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata


class _Put(NamedTuple):
    config: RunnableConfig
    checkpoint: Checkpoint
    metadata: CheckpointMetadata


class _Writes(NamedTuple):
    config: RunnableConfig
    writes: Sequence[tuple[str, Any]]
    task_id: str
    task_path: str


class Buffered(NamedTuple):
    """What a flush sends: the newest checkpoint with the channels that moved and their values
    as serialized when put (the serializer's ``(type, bytes)``, not deflated yet), or None;
    then the writes against it, in the order they were put."""

    put: (
        tuple[
            RunnableConfig,
            Checkpoint,
            CheckpointMetadata,
            ChannelVersions,
            dict[str, tuple[str, bytes]],
        ]
        | None
    )
    writes: list[tuple[RunnableConfig, Sequence[tuple[str, Any]], str, str]]


class WriteBuffer:
    """One thread's unsent checkpoint writes (root namespace only) within a drive."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self._put: _Put | None = None
        self._moved: dict[str, tuple[str, bytes] | None] = {}
        self._writes: list[_Writes] = []
        self.newest_id: str | None = None
        """The id of the newest checkpoint put in this block (sent or not), or None."""
        self.puts_held = 0
        """Checkpoints put in this block (each one held; superseded ones are never sent)."""

    def __bool__(self) -> bool:
        return self._put is not None or bool(self._writes)

    def hold_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        serialized: dict[str, tuple[str, bytes]],
    ) -> None:
        """Keep ``checkpoint`` as the newest, with ``serialized``: the values of its channels in
        ``new_versions``, serialized now (deflated only if flushed: most are superseded
        first); the writes held against older ones are dropped."""
        # metadata is copied: LangGraph may update its own dict after the put returns
        self._put = _Put(config, checkpoint, dict(metadata))  # type: ignore[arg-type]
        for channel in new_versions:
            self._moved.pop(channel, None)  # newest last, as the versions were put
            self._moved[channel] = serialized.get(channel)
        self._writes.clear()
        self.newest_id = checkpoint["id"]
        self.puts_held += 1

    def holds_writes_for(self, config: RunnableConfig) -> bool:
        """Whether writes against ``config``'s checkpoint may wait here: it is the newest put
        in this block (or the block has put none yet, and nothing is waiting)."""
        conf = config["configurable"]
        if conf.get("checkpoint_ns", ""):
            return False
        if self.newest_id is None:
            return not self._writes or self._writes[0].config["configurable"].get(
                "checkpoint_id"
            ) == conf.get("checkpoint_id")
        return bool(conf.get("checkpoint_id") == self.newest_id)

    def hold_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        """Keep a task's writes against the newest checkpoint (serialized when sent: their
        values become channel values only when the step ends, and the step's checkpoint put
        then supersedes them before any node reads those values)."""
        self._writes.append(_Writes(config, list(writes), task_id, task_path))

    def take(self) -> Buffered:
        """Everything held, emptied from the buffer (a failed send is not sent again)."""
        put = None
        if self._put is not None:
            config, checkpoint, metadata = self._put
            versions = checkpoint["channel_versions"]
            moved = {ch: versions[ch] for ch in self._moved if ch in versions}
            serialized = {
                ch: value
                for ch, value in self._moved.items()
                if value is not None and ch in versions
            }
            put = (config, checkpoint, metadata, moved, serialized)
        writes = [(w.config, w.writes, w.task_id, w.task_path) for w in self._writes]
        self._put, self._moved, self._writes = None, {}, []
        return Buffered(put, writes)
