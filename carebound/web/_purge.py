"""Purging ended runs from the JSON API and the web inbox: the same report as
``carebound purge --json``, the audit chains always archived first, to the server's archive
(:attr:`WebSettings.purge_archive`), and one PHI-free log line per purge.

The web form's report is kept for its reviewer for an hour and shown by a redirect
(POST-redirect-GET): reloading the report page shows the same report and purges nothing
again (a reload re-posted the form, purging again and reporting what that second purge did)::

    {prefix}:web:purge-report:<random id>   JSON {"by", "days", "report"}, for an hour
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import Request

from carebound.audit import AuditExportError
from carebound.engine.retention import PurgeReport
from carebound.logs import event
from carebound.state.keys import global_key
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


REPORT_KEPT_S = 3600
"""How long the web form's purge report stays readable at its address."""


def _report_key(request: Request, report_id: str) -> str:
    return global_key(context(request).runner.prefix, "web", "purge-report", report_id)


def keep_report(request: Request, report: PurgeReport, *, by: str, days: int) -> str:
    """Keep ``report`` for reviewer ``by`` (see :data:`REPORT_KEPT_S`); its id, for the URL."""
    report_id = secrets.token_urlsafe(16)
    document = json.dumps({"by": by, "days": days, "report": report.summary()})
    context(request).runner.client.set(_report_key(request, report_id), document, ex=REPORT_KEPT_S)
    return report_id


def kept_report(request: Request, report_id: str, *, by: str) -> tuple[PurgeReport, int] | None:
    """The report :func:`keep_report` kept under ``report_id`` for ``by``, with its days; None
    when there is none (expired, never made, or another reviewer's)."""
    if len(report_id) > 64:
        return None
    raw = context(request).runner.client.get(_report_key(request, report_id))
    if raw is None:
        return None
    kept = json.loads(raw)
    if kept["by"] != by:
        return None
    summary = kept["report"]
    report = PurgeReport(
        purged=summary["purged"],
        refused=summary["refused"],
        keys_deleted=summary["keys_deleted"],
        index_trimmed=summary["audit_index_trimmed"],
        dry_run=summary["dry_run"],
        ended_before=datetime.fromisoformat(summary["ended_before"]),
        archive=Path(summary["archive"]) if summary["archive"] else None,
    )
    return report, int(kept["days"])
