"""Retention: purge ended runs past a retention period, their audit chains archived first.

A purge lists the ended runs (completed, failed, budget exhausted, cancelled, quarantined)
whose last change is older than the cutoff, appends each run's audit chain, verified and
signed, to an archive file (:func:`carebound.audit.archive_chains`), and only then deletes
every key of the runs it archived. A run whose chain does not verify is neither archived nor
purged: it stays for someone to look at. The global audit index, a copy of the runs' events
for review across runs, is trimmed to the same cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from carebound.audit import archive_chains
from carebound.clock import to_ms
from carebound.engine.core import Core
from carebound.state.purge import purge_runs, trim_audit_index
from carebound.state.run_search import RunFilter, search_runs
from carebound.state.runs import FINAL_STATUSES


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, dry, would remove)."""

    purged: list[str] = field(default_factory=list)
    """Ids of the runs whose keys were deleted (dry run: that would be)."""
    refused: dict[str, list[str]] = field(default_factory=dict)
    """Runs kept because their audit chain does not verify, with the problems found."""
    keys_deleted: int = 0
    index_trimmed: int = 0
    """Entries dropped from the global audit index."""
    dry_run: bool = False


def ended_before(core: Core, cutoff: datetime) -> list[str]:
    """Ids of the runs that ended (last changed) before ``cutoff``, oldest started first."""
    where = RunFilter(statuses=FINAL_STATUSES, updated_before=cutoff)
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = search_runs(core.client, core.prefix, where, limit=1000, offset=offset)
        ids.extend(r.run_id for r in page.runs)
        offset = page.next_offset
    return ids[::-1]


def purge(
    core: Core, cutoff: datetime, *, archive: Path | None, dry_run: bool = False
) -> PurgeReport:
    """See :meth:`carebound.Runner.purge`."""
    candidates = ended_before(core, cutoff)
    if dry_run:
        return PurgeReport(purged=candidates, dry_run=True)
    refused: dict[str, list[str]] = {}
    if archive is not None:
        report = archive_chains(core.audit_log, candidates, archive, now=core.clock.now())
        refused = report.refused
        candidates = report.written
    deleted = purge_runs(core.client, core.prefix, candidates)
    trimmed = trim_audit_index(core.client, core.prefix, to_ms(cutoff))
    return PurgeReport(
        purged=candidates, refused=refused, keys_deleted=deleted, index_trimmed=trimmed
    )
