"""Reads of a simulated world remembered for one graph segment (one ``graph.invoke`` of a drive).

A referral_intake start asks its simulated EHR and payer the same questions many times (the
Coverage search behind every reconcile fact, the referring Practitioner behind every draft):
about 46 Redis round trips of the 99 a start took. Inside :func:`segment_reads` each hash
read goes to Redis once; any write to
the world through this process (an effect, an inbound document, seeding, claiming due replies)
forgets the reads of the keys it writes, so a segment always sees its own writes.

A world's reads are remembered a whole hash at a time, and the first read of a segment takes
the whole world (every hash its key registry names) in that one round trip
(:func:`remembered_hash`): a start's twelve reads of its world became three (the first, and a
re-read of each chart it wrote, until a write of the segment's own was remembered as applied:
one). An effect's first try then computes on the remembered values and writes in one round
trip (its guards compare them with Redis in the step that writes; a guard that fails, or an
error the remembered values lead to, sends it back to fresh reads).

Why per segment and not longer: a segment runs from a resume to the run's next stop, and
nothing outside the run can reach it in between (an office's reply, or a reviewer's decision,
reaches a run only as an event or a decision that resumes a *new* segment). A write by another
process during a segment is seen by the next segment, as a read made a moment earlier would
have missed it too. Tools still call their connectors, so every tool call is gated and audited
as before; only the round trip behind a repeated read is saved.

Outside a segment (the wake path, a scenario's checks, tests) nothing is cached.

A start that drives its new run here reads the world it seeds in the round trip that stores the
run (:func:`prefetching`, :func:`prefetched`): the drive's first segment takes the world whole
from that read instead of a round trip of its own. Nothing writes a new run's world between that
trip (which also takes the run's lease) and the segment, and a world write through this process
in between discards the prefetched world.

:func:`graph_segment` is what a drive wraps each ``graph.invoke`` in: these reads, and riding
audit appends (``carebound._wire.riding``: an agent's audit events go to Redis ahead of the
segment's next round trip, its next checkpoint write at the latest, instead of one round trip
each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from carebound._wire import riding

Hash = Mapping[str, str]
"""A hash as read: field -> value (text), in Redis's order."""


@dataclass
class _Reads:
    """What one segment has read: whole hashes by key, and the registries already taken whole."""

    hashes: dict[str, Hash] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    """Keys a registry taken whole named, and keys written since: any other key of a taken
    registry's world held nothing when it was taken."""


_SEGMENT: ContextVar[_Reads | None] = ContextVar("carebound_segment_reads", default=None)
_PREFETCHED: ContextVar[dict[str, dict[str, Hash]] | None] = ContextVar(
    "carebound_prefetched_worlds", default=None
)


@contextmanager
def prefetching() -> Iterator[None]:
    """Within this block, on this thread, a world read whole ahead of the drive
    (:func:`prefetched`) serves the first read of that world by the next segment, once; what
    that segment leaves unused is dropped when it ends."""
    token = _PREFETCHED.set({})
    try:
        yield
    finally:
        _PREFETCHED.reset(token)


def prefetch_wanted() -> bool:
    """Whether a world read whole now would be kept for the next segment (inside
    :func:`prefetching`)."""
    return _PREFETCHED.get() is not None


def prefetched(registry: str, whole: dict[str, Hash]) -> None:
    """The world of ``registry`` read whole (as ``take_all`` of :func:`remembered_hash` reads
    it), for the next segment's first read of it (nothing outside :func:`prefetching`)."""
    worlds = _PREFETCHED.get()
    if worlds is not None:
        worlds[registry] = whole


@contextmanager
def segment_reads() -> Iterator[None]:
    """Within this block, on this thread (and the graph tasks it runs), world reads are
    remembered until the next world write or the end of the block (which drops any world
    prefetched for it and not used: only the first segment may use it)."""
    token = _SEGMENT.set(_Reads())
    try:
        yield
    finally:
        _SEGMENT.reset(token)
        worlds = _PREFETCHED.get()
        if worlds:
            worlds.clear()


@contextmanager
def graph_segment() -> Iterator[None]:
    """One graph segment of a drive: world reads remembered (:func:`segment_reads`) and audit
    appends riding the next round trip (``carebound._wire.riding``)."""
    with riding(), segment_reads():
        yield


def in_segment() -> bool:
    """Whether reads are remembered here (inside :func:`segment_reads`)."""
    return _SEGMENT.get() is not None


def remembered_hash(
    key: str,
    *,
    registry: str,
    take_all: Callable[[], dict[str, Hash]],
    fetch: Callable[[], Hash],
) -> Hash:
    """The hash at ``key`` as this segment knows it (call only inside :func:`segment_reads`).

    The first read of a segment under ``registry`` (a world's key registry) takes every hash it
    names with ``take_all`` (key -> hash, one round trip); a key written since is read alone
    with ``fetch``, and a key the registry did not name held nothing (every write of a world
    registers its keys): it reads as empty, without a round trip. Nobody may mutate what is
    returned."""
    reads = _SEGMENT.get()
    if reads is None:
        raise RuntimeError("remembered_hash is for reads inside segment_reads()")
    known = reads.hashes.get(key)
    if known is not None:
        return known
    if registry not in reads.taken:
        reads.taken.add(registry)
        worlds = _PREFETCHED.get()
        whole = worlds.pop(registry, None) if worlds else None
        if whole is None:
            whole = take_all()
        reads.hashes.update(whole)
        reads.listed.update(whole)
        known = reads.hashes.get(key)
        if known is not None:
            return known
    if key not in reads.listed:  # the registry was taken whole and did not name it
        reads.hashes[key] = {}
        return reads.hashes[key]
    value = fetch()
    reads.hashes[key] = value
    return value


Known = Literal["read", "unlisted", "unknown"]
"""How a segment knows a field: read (from Redis, this segment), unlisted (its world was taken
whole and did not name the key: it was empty then, unless someone wrote it without registering
it), unknown."""


def remembered_field(key: str, field_name: str, *, registry: str) -> tuple[Known, str | None]:
    """How this segment knows field ``field_name`` of the hash at ``key`` (in the world of
    ``registry``), and its value (None: absent)."""
    reads = _SEGMENT.get()
    if reads is None:
        return "unknown", None
    known = reads.hashes.get(key)
    if known is not None:
        return "read", known.get(field_name)
    if registry in reads.taken and key not in reads.listed:
        return "unlisted", None
    return "unknown", None


def hashes_after_hset(ops: Iterable[Sequence[str]]) -> dict[str, Hash]:
    """The hashes this segment knows as they will be once ``ops`` (``(command, key, args...)``)
    are applied, for each key that only ``HSET`` writes: remember them with
    :func:`remember_hashes` once the write landed."""
    reads = _SEGMENT.get()
    if reads is None:
        return {}
    after: dict[str, dict[str, str]] = {}
    refused: set[str] = set()
    for command, key, *args in ops:
        known = reads.hashes.get(key)
        if command != "HSET" or known is None or key in refused:
            refused.add(key)
            continue
        fields = after.setdefault(key, dict(known))
        fields.update(zip(args[::2], args[1::2], strict=True))
    return {key: fields for key, fields in after.items() if key not in refused}


def remember_hashes(hashes: Mapping[str, Hash]) -> None:
    """Writes of this process landed: the segment knows these hashes as they are now."""
    reads = _SEGMENT.get()
    if reads is not None:
        reads.hashes.update(hashes)


def forget_reads(keys: Iterable[str]) -> None:
    """A write to ``keys`` is about to happen: forget every remembered read of them (and any
    world prefetched and not used yet)."""
    worlds = _PREFETCHED.get()
    if worlds:
        worlds.clear()
    reads = _SEGMENT.get()
    if reads is None:
        return
    for key in keys:
        reads.hashes.pop(key, None)
        reads.listed.add(key)
