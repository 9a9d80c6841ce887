"""Retention of run keys: every key of an ended run expires a set time after it ended.

When a run reaches an ended status (completed, failed, budget exhausted, cancelled,
quarantined), the write that stores that status also queues ``run_retention.lua``, which sets
a TTL on every key of the run: its record, case, events, waits, ledger, lease, checkpoints,
approvals and simulated world. A run that is reopened (a quarantined run an operator retries)
has every TTL removed in the write that reopens it. No extra round trip: the script rides in
the pipeline of the transition, and it reads the stored status itself, so a write that was
refused (a lost lease) sets no TTL.

The run's audit chain (:data:`AUDIT_SUFFIXES`) is the exception: it never expires unseen. Once
the rest of the run has expired, ``carebound audit archive --before DATE`` (:func:`carebound.
engine.retention.archive_expired`) appends it, verified and signed, to an archive file, checks
the file, and only then deletes it and the run's entries in the indexes that span runs.

A run's keys are found without scanning the key space: the fixed ones by name
(:data:`FIXED_SUFFIXES`), the checkpoint namespaces from the checkpointer's namespace set, and
the keys whose names the run id alone does not give from the run's key registry
(:func:`carebound.state.keys.key_registry`: its approvals) and from the simulated world's
``world:meta`` hash (its resources; runs seeded before listed them in the key registry), which
the scripts that create them fill.

How long: ``Runner(retention_days=...)``, else ``CAREBOUND_RETENTION_DAYS``, else
:data:`DEFAULT_RETENTION_DAYS`; ``0`` (or ``none``/``keep``) keeps ended runs for ever.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import redis

from carebound.state.keys import key_registry, run_key
from carebound.state.lua import script
from carebound.state.runs import FINAL_STATUSES

RETENTION_VAR = "CAREBOUND_RETENTION_DAYS"
"""Days an ended run's keys are kept (``0``, ``none`` or ``keep``: for ever)."""

DEFAULT_RETENTION_DAYS = 30.0
"""How long an ended run's keys are kept when nothing says otherwise."""

_KEEP_WORDS = frozenset({"0", "none", "keep", "never"})

_WORLD_SYSTEMS = ("ehr", "outreach", "payer", "erp")

FIXED_SUFFIXES: tuple[str, ...] = (
    "run",
    "case",
    "keys",
    "events",
    "events:queue",
    "waits",
    "ledger",
    "lease",
    "cp:ns",
    "cp:runs",
    "cp:pk",
    "outreach:real:attempts",
    "outreach:real:attempt_of",
    "outreach:real:receipts",
    "outreach:real:open",
    "world:meta",
    # counted before any write of the simulated world, so never registered by its script
    *(f"world:{system}:attempts" for system in _WORLD_SYSTEMS),
)
"""The run's keys whose names its id gives (after ``{prefix}:{<run>}:``), but its audit chain."""

AUDIT_SUFFIXES: tuple[str, ...] = ("audit", "audit:head", "audit:once")
"""The run's audit chain: kept after the rest expires, until archived (see the module's doc)."""

_RETENTION = script("run_retention")
_ENDED = ",".join(sorted(FINAL_STATUSES))


PURGE_MAX_DAYS = 36_500
"""The longest retention period a purge accepts (100 years; a longer one is not a date)."""


def retention_seconds(
    days: float | None = None, *, environ: Mapping[str, str] | None = None
) -> int:
    """Seconds an ended run's keys are kept (0: for ever): ``days`` when given, else
    ``CAREBOUND_RETENTION_DAYS``, else :data:`DEFAULT_RETENTION_DAYS`.

    Raises:
        ValueError: ``days`` is negative, or the variable is not a number of days.
    """
    if days is None:
        raw = (os.environ if environ is None else environ).get(RETENTION_VAR, "").strip()
        if raw.lower() in _KEEP_WORDS:
            return 0
        if not raw:
            days = DEFAULT_RETENTION_DAYS
        else:
            try:
                days = float(raw)
            except ValueError:
                raise ValueError(
                    f"{RETENTION_VAR}={raw!r} is not a number of days: set it to the days an "
                    "ended run's keys are kept (e.g. 30), or 0 to keep them for ever"
                ) from None
    if math.isnan(days) or days < 0:
        raise ValueError(
            f"retention of {days!r} days: give 0 (keep for ever) or a positive number of days"
        )
    return 0 if days == 0 else max(1, round(days * 86400))


def queue_retention(pipe: redis.client.Pipeline, prefix: str, run_id: str, ttl_s: int) -> None:
    """Queue on ``pipe`` the script that gives every key of the run ``ttl_s`` seconds to live
    if its stored status is an ended one (and ``ttl_s`` > 0), else removes every TTL. Queue
    it after the write of the status. Its reply: keys changed, -1 for no readable record."""
    keys = [
        run_key(prefix, run_id, "run"),
        key_registry(prefix, run_id),
        run_key(prefix, run_id, "cp", "ns"),
        run_key(prefix, run_id, "world", "meta"),
    ]
    base = run_key(prefix, run_id, "")
    _RETENTION.queue(pipe, keys, [ttl_s, base, _ENDED, *FIXED_SUFFIXES])
