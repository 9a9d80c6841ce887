"""Purging ended runs from the JSON API and the web inbox: the same report as
``carebound purge --json``, the audit chains always archived first, to the server's archive
(:attr:`WebSettings.purge_archive`), and one PHI-free log line per purge."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import Request

from carebound.audit import AuditExportError
from carebound.engine.retention import PurgeReport
from carebound.logs import event
from carebound.web._context import context
from carebound.web._problems import Problem

_log = logging.getLogger("carebound.web")


def purge_ended(request: Request, *, older_than_days: int, dry_run: bool, by: str) -> PurgeReport:
    """Purge the runs that ended more than ``older_than_days`` ago for ``by`` (a principal),
    their audit chains appended, verified and signed, to the server's archive first; a run
    whose chain does not verify is kept (listed as refused). ``dry_run`` deletes nothing."""
    ctx = context(request)
    runner, archive = ctx.runner, ctx.settings.purge_archive
    cutoff = runner.clock.now() - timedelta(days=older_than_days)
    try:
        if not dry_run:
            archive.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        report = runner.purge(cutoff, archive=archive, dry_run=dry_run)
    except (OSError, AuditExportError) as exc:
        event(_log, "runs.purge_failed", logging.ERROR, by=by, error=type(exc).__name__)
        raise Problem(
            status=500,
            detail="the server cannot write its purge archive; nothing was deleted",
            code="archive_unwritable",
            hint="the operator: point CAREBOUND_ARCHIVE at a file in a writable folder",
        ) from None
    event(
        _log, "runs.purged", by=by, ended_before=cutoff.isoformat(), dry_run=dry_run,
        purged=len(report.purged), refused=len(report.refused),
        keys_deleted=report.keys_deleted,
    )  # fmt: skip
    return report
