"""Reads of a simulated world remembered for one graph segment (one ``graph.invoke`` of a drive).

A referral_intake start asks its simulated EHR and payer the same questions many times (the
Coverage search behind every reconcile fact, the referring Practitioner behind every draft):
about 46 Redis round trips of the 99 a start took. Inside :func:`segment_reads` each distinct
read (a Redis key, and a hash field or all of a hash's values) goes to Redis once; any write to
the world through this process (an effect, an inbound document, seeding, claiming due replies)
forgets the reads of the keys it writes, so a segment always sees its own writes.

Why per segment and not longer: a segment runs from a resume to the run's next stop, and
nothing outside the run can reach it in between (an office's reply, or a reviewer's decision,
reaches a run only as an event or a decision that resumes a *new* segment). A write by another
process during a segment is seen by the next segment, as a read made a moment earlier would
have missed it too. Tools still call their connectors, so every tool call is gated and audited
as before; only the round trip behind a repeated read is saved.

Outside a segment (the wake path, a scenario's checks, tests) nothing is cached.

:func:`graph_segment` is what a drive wraps each ``graph.invoke`` in: these reads, and riding
audit appends (``carebound._wire.riding``: an agent's audit events go to Redis ahead of the
segment's next round trip, its next checkpoint write at the latest, instead of one round trip
each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar, cast

from carebound._wire import riding

_T = TypeVar("_T")
_ReadKey = tuple[str, str, str | None]
"""(what was read: ``"hget"`` or ``"hvals"``, the Redis key, the hash field or None)."""

_SEGMENT: ContextVar[dict[_ReadKey, object] | None] = ContextVar(
    "carebound_segment_reads", default=None
)


@contextmanager
def segment_reads() -> Iterator[None]:
    """Within this block, on this thread (and the graph tasks it runs), world reads are
    remembered until the next world write or the end of the block."""
    token = _SEGMENT.set({})
    try:
        yield
    finally:
        _SEGMENT.reset(token)


@contextmanager
def graph_segment() -> Iterator[None]:
    """One graph segment of a drive: world reads remembered (:func:`segment_reads`) and audit
    appends riding the next round trip (``carebound._wire.riding``)."""
    with riding(), segment_reads():
        yield


def remembered(kind: str, key: str, field: str | None, fetch: Callable[[], _T]) -> _T:
    """The value of a read: remembered within a segment, else ``fetch()`` (and remembered).

    ``fetch`` must return a value nobody mutates (text, a tuple of text, None)."""
    reads = _SEGMENT.get()
    if reads is None:
        return fetch()
    read_key = (kind, key, field)
    if read_key in reads:
        return cast(_T, reads[read_key])
    value = fetch()
    reads[read_key] = value
    return value


def forget_reads(keys: Iterable[str]) -> None:
    """A write to ``keys`` is about to happen: forget every remembered read of them."""
    reads = _SEGMENT.get()
    if not reads:
        return
    written = set(keys)
    for read_key in [k for k in reads if k[1] in written]:
        del reads[read_key]
