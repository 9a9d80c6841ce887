"""The global audit index: one small pointer per event, resolved against the runs' streams.

Each index entry holds the run id, the event's ``seq`` and ``at``, the id of the event's
entry in the run's own stream, left out when it is the index entry's own id (the append script
gives the event that id on a single server: about 100 bytes per parked run). The event itself
is stored once, in the run's stream (the
source of truth); storing it twice cost as much Redis as the run's whole chain. Readers of
the index (``AuditLog.recent``, the KPI fold, the notifier) resolve a page of pointers with
one pipelined round trip. Entries written before this layout carry the event in an
``event`` field and are read as they are; a pointer whose run was purged resolves to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.typing import EncodableT, FieldT

from carebound.state.audit_codec import unpack_event
from carebound.state.keys import audit_stream_key, text

INDEX_FIELDS = ("run_id", "seq", "at")
"""The fields of an index entry, in the order written (``at`` only when it is needed)."""


def pointer_fields(run_id: str, seq: int, at: str) -> dict[FieldT, EncodableT]:
    """The index entry of the event at ``seq`` of ``run_id``, stored under stream id ``at``."""
    return {"run_id": run_id, "seq": seq, "at": at}


def _fields(raw: Mapping[Any, Any] | Sequence[Any] | None) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return {text(k): v for k, v in raw.items()}
    return {text(k): v for k, v in zip(raw[::2], raw[1::2], strict=False)}


class _Page:
    """One page of index entries: which run streams to read, and how to finish the page."""

    def __init__(self, prefix: str, entries: Sequence[tuple[Any, Any]]) -> None:
        self.entries = entries
        self.fields = [_fields(raw) for _, raw in entries]
        for (entry_id, _), f in zip(entries, self.fields, strict=True):
            f.setdefault("at", entry_id)  # the event's id in the run's stream is the entry's
        self.wanted = [
            (text(f["run_id"]), text(f["at"]))
            for f in self.fields
            if "event" not in f and "run_id" in f
        ]
        self.keys = [audit_stream_key(prefix, run_id) for run_id, _ in self.wanted]

    def finish(self, replies: Sequence[Any]) -> list[tuple[str, bytes | str]]:
        found: dict[tuple[str, str], bytes | str] = {}
        for pointer, reply in zip(self.wanted, replies, strict=True):
            event = _fields(reply[0][1]).get("event") if reply else None
            if event is not None:
                found[pointer] = unpack_event(event)
        out: list[tuple[str, bytes | str]] = []
        for (entry_id, _), f in zip(self.entries, self.fields, strict=True):
            if "event" in f:
                out.append((text(entry_id), f["event"]))
            elif "run_id" in f:
                event = found.get((text(f["run_id"]), text(f["at"])))
                if event is not None:
                    out.append((text(entry_id), event))
        return out


def resolve(
    client: redis.Redis | RedisCluster, prefix: str, entries: Sequence[tuple[Any, Any]]
) -> list[tuple[str, bytes | str]]:
    """``(index entry id, event JSON)`` for each index entry whose event is still stored,
    oldest first (one pipelined round trip for the pointers of the page)."""
    page = _Page(prefix, entries)
    if not page.wanted:
        return page.finish([])
    with client.pipeline(transaction=False) as pipe:
        for key, (_, at) in zip(page.keys, page.wanted, strict=True):
            pipe.xrange(key, min=at, max=at, count=1)
        return page.finish(pipe.execute())


async def aresolve(
    client: redis.asyncio.Redis | AsyncRedisCluster, prefix: str, entries: Sequence[tuple[Any, Any]]
) -> list[tuple[str, bytes | str]]:
    """:func:`resolve` on an asyncio client."""
    page = _Page(prefix, entries)
    if not page.wanted:
        return page.finish([])
    async with client.pipeline(transaction=False) as pipe:
        for key, (_, at) in zip(page.keys, page.wanted, strict=True):
            pipe.xrange(key, min=at, max=at, count=1)
        return page.finish(await pipe.execute())
