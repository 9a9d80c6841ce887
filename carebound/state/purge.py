"""Removing runs from the store for good: every key under their hash tags, and their entries in
the indexes that span runs.

A run's keys are found by one ``SCAN`` over the prefix's hash-tagged keys (``{prefix}:{<run>}:
...``), whatever stores wrote them (records, checkpoints, approvals, ledger, audit chain,
simulated world), so a store added later is purged too. An administrative operation, not for
hot paths: the scan reads the whole key space once per purge, whatever the number of runs.
"""

from __future__ import annotations

from collections.abc import Collection

import redis

from carebound.audit import _chain
from carebound.checkpoint._layout import registry_key
from carebound.state.keys import global_key, run_key, text
from carebound.state.retention import AUDIT_SUFFIXES

_BATCH = 500


def _tagged_run(key: str, prefix: str) -> str | None:
    """The run id in a key's hash tag, or None for a key that spans runs."""
    head = prefix + ":{"
    if not key.startswith(head):
        return None
    end = key.find("}", len(head))
    return key[len(head) : end] if end > 0 else None


def purge_runs(client: redis.Redis, prefix: str, run_ids: Collection[str]) -> int:
    """Delete every key of ``run_ids`` and drop them from the cross-run indexes (registry,
    checkpoint thread registry, drive marks, failures, quarantine, audit anchors, timers).
    Returns how many keys were deleted. Safe to run again after a failure half-way."""
    if not run_ids:
        return 0
    wanted = set(run_ids)
    deleted = 0
    batch: list[bytes | str] = []
    for key in client.scan_iter(match=f"{prefix}:{{*", count=1000):
        if _tagged_run(text(key), prefix) in wanted:
            batch.append(key)
        if len(batch) >= _BATCH:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    _drop_from_indexes(client, prefix, wanted)
    return deleted


def _drop_from_indexes(client: redis.Redis, prefix: str, wanted: set[str]) -> None:
    """Drop ``wanted`` runs from the indexes that span runs."""
    timers = [global_key(prefix, "{timers}", "due"), global_key(prefix, "{timers}", "claimed")]
    stale_timers: dict[str, list[str]] = {
        key: [text(m) for m in client.zrange(key, 0, -1) if text(m).partition("|")[0] in wanted]
        for key in timers
    }
    ids = sorted(wanted)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe.zrem(global_key(prefix, "runs"), *chunk)
        pipe.zrem(registry_key(prefix), *chunk)
        pipe.zrem(global_key(prefix, "drive"), *chunk)
        pipe.hdel(global_key(prefix, "drive", "failures"), *chunk)
        pipe.zrem(global_key(prefix, "quarantine"), *chunk)
        pipe.hdel(_chain.anchors_key(prefix), *chunk)
    for key, members in stale_timers.items():
        if members:
            pipe.zrem(key, *members)
    pipe.execute()


def expired_runs(client: redis.Redis, prefix: str, created_before_ms: int) -> list[str]:
    """Registered runs started before ``created_before_ms`` whose record is gone: the rest of
    the run expired under the retention policy (:mod:`carebound.state.retention`) and what is
    left is its audit chain and its entries in the indexes that span runs. Oldest first."""
    registry = global_key(prefix, "runs")
    ids = [text(i) for i in client.zrangebyscore(registry, "-inf", created_before_ms)]
    gone: list[str] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe = client.pipeline(transaction=False)
        for run_id in chunk:
            pipe.exists(run_key(prefix, run_id, "run"))
        gone += [run_id for run_id, n in zip(chunk, pipe.execute(), strict=True) if not n]
    return gone


def forget_runs(client: redis.Redis, prefix: str, run_ids: Collection[str]) -> int:
    """Delete what is left of expired runs (their audit chains and key registries, by name:
    no scan) and drop them from the indexes that span runs. Returns the keys deleted."""
    if not run_ids:
        return 0
    deleted = 0
    ids = list(run_ids)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe = client.pipeline(transaction=False)
        for run_id in chunk:  # one UNLINK per run: its keys share a slot, runs do not
            pipe.unlink(*(run_key(prefix, run_id, s) for s in (*AUDIT_SUFFIXES, "keys")))
        deleted += sum(int(n) for n in pipe.execute())
    _drop_from_indexes(client, prefix, set(ids))
    return deleted


def trim_audit_index(client: redis.Redis, prefix: str, before_ms: int) -> int:
    """Drop the global audit index's entries recorded before ``before_ms`` (the runs' own
    chains, the source of truth, are untouched). Returns how many were dropped."""
    return int(client.xtrim(_chain.index_key(prefix), minid=str(before_ms), approximate=False))
