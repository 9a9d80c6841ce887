"""Global audit index entries a crash lost on a Redis Cluster, written again.

On a cluster the global index and the anchors live in other slots than a run's chain, so an
append writes them in a second step; a process that dies in between leaves the event in the
run's chain (the source of truth) and the anchor behind it, and its index entry missing. The
anchor's step replies with where the anchor was, so the run's next append sees the gap; for a
run with no next event, :meth:`carebound.audit.AuditLog.repair_index` closes it.

An index entry that did land (the two commands of the second step go to different nodes) is
not written twice: the index is searched around the event's own stream id first.
"""

from __future__ import annotations

from typing import Any

import redis

from carebound.audit import _chain
from carebound.state import audit_index
from carebound.state.keys import text

WINDOW_MS = 60_000
"""How far, either side of an event's id in its run's stream, its index entry is looked for (the
entry is written right after the event, on another node whose clock may differ a little)."""


def reindex(client: redis.Redis, prefix: str, run_id: str, *, after: int, upto: int) -> list[int]:
    """Index ``run_id``'s events with ``after < seq <= upto`` that the global index lacks;
    returns their seqs (two round trips to look, one to write; none when nothing is lost)."""
    if upto <= after:
        return []
    lost = _between(client.xrange(_chain.stream_key(prefix, run_id)), after, upto)
    if not lost:
        return []
    index = _chain.index_key(prefix)
    with client.pipeline(transaction=False) as pipe:
        for low, high in _windows(lost):
            pipe.xrange(index, min=low, max=high)
        missing = _unindexed(run_id, lost, pipe.execute())
    if missing:
        with client.pipeline(transaction=False) as pipe:
            for at, seq in missing:
                pipe.xadd(index, audit_index.pointer_fields(run_id, seq, at))
            pipe.execute()
    return [seq for _, seq in missing]


def _between(entries: Any, after: int, upto: int) -> list[tuple[str, int]]:
    """The stream ids and seqs of a run's chain ``entries`` with ``after < seq <= upto``."""
    found: list[tuple[str, int]] = []
    for entry_id, fields in entries or []:
        seq = _chain.parse_event(_chain.entry_event(fields)).seq
        if after < seq <= upto:
            found.append((text(entry_id), seq))
    return found


def _windows(events: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """For each event, the range of global index ids its entry is looked for in."""
    spans = []
    for at, _ in events:
        ms = int(at.split("-")[0])
        spans.append((str(max(ms - WINDOW_MS, 0)), str(ms + WINDOW_MS)))
    return spans


def _unindexed(run_id: str, events: list[tuple[str, int]], pages: Any) -> list[tuple[str, int]]:
    """The ``events`` whose index window (one page each) holds no pointer to them."""
    return [
        (at, seq)
        for (at, seq), page in zip(events, pages, strict=True)
        if not any(_points_at(fields, run_id, seq) for _, fields in page or [])
    ]


def _points_at(fields: Any, run_id: str, seq: int) -> bool:
    """Whether an index entry's ``fields`` are the pointer to ``run_id``'s event ``seq``."""
    found = {text(k): v for k, v in (fields or {}).items()}
    return text(found.get("run_id", b"")) == run_id and int(found.get("seq", 0) or 0) == seq
