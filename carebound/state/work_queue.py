"""The work queue: "drive run R" messages on a Redis Streams consumer group.

Start, a decision that ends a hold, a delivered event, a fired timer and a recovered run each
*enqueue* their run (:meth:`WorkQueue.enqueue`); workers read with ``XREADGROUP``, *begin* a
message, drive the run and *acknowledge* it. Messages carry the run id and why it was woken,
never PHI.

* **Coalescing.** A run has at most one message waiting: the ``queued`` hash maps a run to its
  waiting message, so many wake-ups before a worker begins it are one message. Beginning a
  message drops that entry, so a wake-up during the drive enqueues a new one.
* **Reclaim.** A message stays pending until acknowledged: a worker that dies leaves it to
  others, who take it over with ``XAUTOCLAIM`` once it has been idle long enough.
* **Dead letters.** A message begun too many times (its workers kept dying), or whose run was
  quarantined, moves to the dead-letter stream; operators list it and retry it.
* **Depth.** An acknowledged message is deleted, so ``XLEN`` is the number of messages waiting
  or in progress.

Every key shares one hash tag (``{<prefix>:work}``), so the scripts stay atomic on Redis
Cluster: the queue is deliberately one slot (see the README's "Workers" section for the limit
that puts on scale).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import ResponseError

from carebound.state.keys import text, work_key
from carebound.state.lua import script

GROUP = "workers"
"""The consumer group every worker reads in."""

_ENQUEUE = script("work_enqueue")
_BEGIN = script("work_begin")
_ACK = script("work_ack")
_DEAD = script("work_dead")
_RETRY = script("work_retry")


@dataclass(frozen=True)
class Message:
    """One "drive run R" message."""

    id: str
    """The stream entry id (its first part is the enqueue time in ms)."""
    run_id: str
    why: str
    """What woke the run: start, decision, event, timer, deadline, recover or retry."""


@dataclass(frozen=True)
class DeadLetter:
    """A run whose message failed too often, waiting for an operator."""

    id: str
    run_id: str
    reason: str
    tries: int
    at_ms: int
    """When it was dead-lettered (ms since the epoch)."""


@dataclass(frozen=True)
class QueueStats:
    """The pool's numbers, as ``carebound worker status --json`` prints them."""

    depth: int
    """Messages waiting or in progress."""
    waiting: int
    """Messages no worker has read yet."""
    pending: int
    """Messages read and not yet acknowledged (in progress, or left by a dead worker)."""
    oldest_age_s: float | None
    """Age of the oldest message waiting or pending (None: the queue is empty)."""
    enqueued: int
    coalesced: int
    """Wake-ups folded into a message already waiting."""
    done: int
    busy: int
    """Messages acknowledged because another worker held the run's lease (it settles them)."""
    reclaimed: int
    dead_lettered: int
    retried: int
    dead_letters: int
    """Dead letters waiting for an operator now."""
    workers: list[dict[str, Any]]
    """One entry per live worker process: consumer, host, pid, slots, busy, free, seen_s."""


def _id_ms(message_id: str) -> int:
    return int(message_id.split("-", 1)[0])


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


class WorkQueue:
    """The work stream, its consumer group, dead letters and pool numbers for one prefix."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.stream = work_key(prefix, "stream")
        self._queued = work_key(prefix, "queued")
        self._tries = work_key(prefix, "tries")
        self._stats = work_key(prefix, "stats")
        self._dead = work_key(prefix, "dead")
        self._workers = work_key(prefix, "workers")
        self._reclaim_cursor = "0-0"

    # -- producing -----------------------------------------------------------------------

    def enqueue(self, run_id: str, why: str) -> str | None:
        """Enqueue "drive ``run_id``"; returns the message id, or None when one is waiting
        already (coalesced)."""
        reply = _ENQUEUE(self.client, [self.stream, self._queued, self._stats], [run_id, why])
        return text(reply) if reply else None

    # -- consuming -----------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) unless it exists."""
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, *, count: int = 1, block_ms: int = 1000) -> list[Message]:
        """Messages no worker has read yet, now owned by ``consumer`` (waits ``block_ms``)."""
        reply: Any = self.client.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        out: list[Message] = []
        for _stream, entries in reply or []:
            out.extend(self._messages(entries))
        return out

    def reclaim(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Message]:
        """Take over messages pending for at least ``min_idle_ms`` (their worker died or
        stalled; the caller's own long drives too: it skips those), scanning the pending list
        a page at a time across calls."""
        reply: Any = self.client.xautoclaim(
            self.stream, GROUP, consumer, min_idle_ms, self._reclaim_cursor, count=count
        )
        self._reclaim_cursor = text(reply[0])
        return self._messages(reply[1])

    def count_reclaimed(self, count: int) -> None:
        """Count messages a worker took over from another (for :meth:`stats`)."""
        self.client.hincrby(self._stats, "reclaimed", count)

    @staticmethod
    def _messages(entries: Sequence[Any]) -> list[Message]:
        out = []
        for entry_id, raw in entries:
            if raw is None:
                continue  # deleted while pending
            fields = _fields(raw)
            out.append(Message(text(entry_id), fields.get("run", ""), fields.get("why", "")))
        return out

    def begin(self, message: Message) -> int:
        """Begin ``message``: the run's next wake-up enqueues anew. Returns how many times the
        message has been begun (1 the first time); 0: it is done already (acknowledged or
        dead-lettered; a late or doubled reclaim), leave it."""
        keys = [self.stream, self._queued, self._tries]
        return int(_BEGIN(self.client, keys, [message.run_id, message.id]))

    def ack(self, message: Message, *, counter: str = "done") -> bool:
        """Acknowledge and delete ``message`` (counted under ``counter``: done or busy).
        False: it was not pending any more."""
        keys = [self.stream, self._tries, self._stats]
        return bool(int(_ACK(self.client, keys, [GROUP, message.id, counter])))

    def dead_letter(self, message: Message, *, reason: str, tries: int) -> bool:
        """Move ``message`` to the dead letters. False: it was not pending any more."""
        keys = [self.stream, self._tries, self._stats, self._dead, self._queued]
        args = [GROUP, message.id, message.run_id, reason, tries]
        return _DEAD(self.client, keys, args) is not None

    # -- dead letters --------------------------------------------------------------------

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The dead letters, oldest first."""
        out = []
        entries: Any = self.client.xrange(self._dead, count=limit)
        for entry_id, raw in entries:
            fields, ident = _fields(raw), text(entry_id)
            out.append(
                DeadLetter(
                    ident, fields["run"], fields["reason"], int(fields["tries"]), _id_ms(ident)
                )
            )
        return out

    def retry(self, dead: DeadLetter) -> bool:
        """Delete a dead letter and enqueue its run again. False: no such dead letter."""
        keys = [self.stream, self._queued, self._stats, self._dead]
        return bool(int(_RETRY(self.client, keys, [dead.id, dead.run_id])))

    # -- the pool's numbers --------------------------------------------------------------

    def report_worker(self, consumer: str, info: Mapping[str, Any]) -> None:
        """Record a worker's slots (called every few seconds while it runs)."""
        entry = {**info, "seen_ms": int(time.time() * 1000)}
        self.client.hset(self._workers, consumer, json.dumps(entry))

    def forget_worker(self, consumer: str) -> None:
        """Drop a worker that stopped, and its consumer (once it has nothing pending)."""
        self.client.hdel(self._workers, consumer)
        try:
            pending = self.client.xpending_range(
                self.stream, GROUP, min="-", max="+", count=1, consumername=consumer
            )
            if not pending:
                self.client.xgroup_delconsumer(self.stream, GROUP, consumer)
        except ResponseError:
            pass  # no group yet

    def stats(self, *, stale_after_s: float = 30.0) -> QueueStats:
        """The pool's numbers; workers not seen for ``stale_after_s`` are left out."""
        self.ensure_group()
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xinfo_groups(self.stream)
        pipe.xpending(self.stream, GROUP)
        pipe.hgetall(self._stats)
        pipe.xlen(self._dead)
        pipe.hgetall(self._workers)
        depth, groups, pending, counters, dead, workers = pipe.execute()
        group = next(g for g in groups if text(g["name"]) == GROUP)
        pending_count = int(pending["pending"])
        oldest: list[int] = []
        if pending_count:
            oldest.append(_id_ms(text(pending["min"])))
        last = text(group["last-delivered-id"])
        unread = self.client.xrange(self.stream, min=f"({last}", count=1)
        if unread:
            oldest.append(_id_ms(text(unread[0][0])))
        now_ms = int(time.time() * 1000)
        counts = {text(k): int(v) for k, v in counters.items()}
        live = []
        for consumer, raw in sorted(workers.items()):
            info = json.loads(raw)
            seen_s = (now_ms - int(info.pop("seen_ms"))) / 1000
            if seen_s <= stale_after_s:
                live.append({"consumer": text(consumer), **info, "seen_s": round(seen_s, 1)})
        return QueueStats(
            depth=int(depth),
            waiting=max(int(depth) - pending_count, 0),
            pending=pending_count,
            oldest_age_s=round((now_ms - min(oldest)) / 1000, 3) if oldest else None,
            enqueued=counts.get("enqueued", 0),
            coalesced=counts.get("coalesced", 0),
            done=counts.get("done", 0),
            busy=counts.get("busy", 0),
            reclaimed=counts.get("reclaimed", 0),
            dead_lettered=counts.get("dead_lettered", 0),
            retried=counts.get("retried", 0),
            dead_letters=int(dead),
            workers=live,
        )
