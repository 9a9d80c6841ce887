"""Retention: purge ended runs past a retention period, their audit chains archived first;
archive the chains that runs expired under the retention policy left behind.

A purge lists the ended runs (completed, failed, budget exhausted, cancelled, quarantined)
whose last change is older than the cutoff, appends each run's audit chain, verified and
signed, to an archive file (:func:`carebound.audit.archive_chains`), and only then deletes
every key of the runs it archived. A run whose chain does not verify is neither archived nor
purged: it stays for someone to look at. The global audit index, a copy of the runs' events
for review across runs, is trimmed to the same cutoff.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carebound.audit import AuditExportError, archive_chains, archive_lock, verify_archive
from carebound.clock import to_ms
from carebound.engine.core import Core
from carebound.state.purge import expired_runs, forget_runs, purge_runs, trim_audit_index
from carebound.state.run_search import RunFilter, search_runs
from carebound.state.runs import FINAL_STATUSES

if TYPE_CHECKING:
    from carebound.engine.runner import Runner
    from carebound.state.lease import Lease


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
    ended_before: datetime | None = None
    """The cutoff: runs whose last change is older were purged."""
    archive: Path | None = None
    """The file the audit chains were appended to (dry run: would be); None: not archived."""

    def summary(self) -> dict[str, Any]:
        """The report as JSON (``carebound purge --json``, ``POST /api/runs/purge``)."""
        return {
            "dry_run": self.dry_run,
            "ended_before": self.ended_before.isoformat() if self.ended_before else None,
            "purged": self.purged,
            "refused": self.refused,
            "keys_deleted": self.keys_deleted,
            "audit_index_trimmed": self.index_trimmed,
            "archive": str(self.archive) if self.archive is not None else None,
        }


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
    """See :meth:`carebound.Runner.purge`. A purge into an archive holds the archive's lock
    from listing the runs to deleting them (:func:`carebound.audit.archive_lock`)."""
    if dry_run:
        candidates = ended_before(core, cutoff)
        return PurgeReport(purged=candidates, dry_run=True, ended_before=cutoff, archive=archive)
    refused: dict[str, list[str]] = {}
    with archive_lock(archive) if archive is not None else contextlib.nullcontext():
        held = _still_ended(core, ended_before(core, cutoff), cutoff)
        candidates = list(held)
        purged: set[str] = set()
        try:
            if archive is not None:
                report = archive_chains(core.audit_log, candidates, archive, now=core.clock.now())
                refused = report.refused
                candidates = report.written
            deleted = purge_runs(core.client, core.prefix, candidates)
            purged = set(candidates)
        finally:
            for run_id, lease in held.items():
                if run_id not in purged:  # a purged run's lease went with its keys
                    core.leases.release(lease)
    trimmed = trim_audit_index(core.client, core.prefix, to_ms(cutoff))
    return PurgeReport(
        purged=candidates, refused=refused, keys_deleted=deleted, index_trimmed=trimmed,
        ended_before=cutoff, archive=archive,
    )  # fmt: skip


def _still_ended(core: Core, run_ids: list[str], cutoff: datetime) -> dict[str, Lease]:
    """The runs of ``run_ids`` that are still ended before ``cutoff`` once their lease is
    held, with their leases (held until they are purged): an operator who released a
    quarantined run after the listing (it runs again, its lease taken) keeps it. A run whose
    lease another process holds is left for the next purge."""
    held: dict[str, Lease] = {}
    for run_id in run_ids:
        cold = functools.partial(core.is_cold, run_id)
        reads = core.trips.take_lease_waiting(run_id, 0.0, cold=cold, audit=None)
        record, lease = reads.record, reads.lease
        if lease is None:
            continue
        if record is None or record.status not in FINAL_STATUSES or record.updated_at >= cutoff:
            core.leases.release(lease)
            continue
        held[run_id] = lease
    return held


@dataclass(frozen=True)
class ChainArchiveReport:
    """What :func:`archive_expired` archived and deleted."""

    archived: list[str] = field(default_factory=list)
    """Runs whose audit chain was appended to the archive, checked there, then deleted."""
    refused: dict[str, list[str]] = field(default_factory=dict)
    """Runs whose chain does not verify: kept in Redis, not archived, with the problems."""
    keys_deleted: int = 0
    index_trimmed: int = 0
    """Entries dropped from the global audit index (recorded before the cutoff)."""


def archive_expired(runner: Runner, before: datetime, archive: Path) -> ChainArchiveReport:
    """Archive, then delete, the audit chains of the runs started before ``before`` whose
    other keys have expired (:mod:`carebound.state.retention`), and trim the global audit
    index to ``before``. Each chain is verified and appended, signed, to ``archive``; the
    file is then read back and checked (:func:`carebound.audit.verify_archive`), and only
    chains that verify there are deleted. The same file format as ``Runner.purge`` writes.

    Raises:
        AuditExportError: the archive cannot be written or read, or what was written does not
            verify (nothing is deleted then).
    """
    client, prefix = runner.client, runner.prefix
    with archive_lock(archive):
        candidates = expired_runs(client, prefix, to_ms(before))
        written = archive_chains(runner.audit_log, candidates, archive, now=runner.clock.now())
        if written.written:
            _check_archived(runner, archive, written.written)
        deleted = forget_runs(client, prefix, written.written)
    trimmed = trim_audit_index(client, prefix, to_ms(before))
    return ChainArchiveReport(
        archived=written.written, refused=written.refused, keys_deleted=deleted,
        index_trimmed=trimmed,
    )  # fmt: skip


def _check_archived(runner: Runner, archive: Path, run_ids: list[str]) -> None:
    """Refuse (nothing deleted yet) unless every chain just appended verifies in the file."""
    checked = verify_archive(archive, runner.audit_log.keyring)
    missing = ["not in the file"]
    bad = {
        r: (checked[r].problems if r in checked else missing)
        for r in run_ids
        if r not in checked or not checked[r].ok
    }
    if bad:
        first = next(iter(bad.items()))
        raise AuditExportError(
            f"{archive}: {len(bad)} chain(s) just archived do not verify in the file "
            f"({first[0]}: {first[1][0] if first[1] else 'missing'}); nothing was deleted",
            hint="check the file was not changed while writing; run 'carebound "
            "verify-archive FILE'",
        )
