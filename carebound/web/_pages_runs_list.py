"""The runs page: search runs (status, agent, requester, patient, start day), cancel one, purge
ended ones.

A supervisor sees every run, may cancel an active one (with a reason, audited) and purge the
runs that ended more than N days ago (their audit chains archived first, to the server's
archive; a dry run lists them); both forms carry the session's CSRF token. Any other reviewer
sees the runs they started.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from carebound._errors import echo_id
from carebound._principal import normalize_reviewer_id
from carebound.state.retention import PURGE_MAX_DAYS as MAX_DAYS
from carebound.state.run_search import RunFilter
from carebound.state.runs import FINAL_STATUSES
from carebound.web._context import check_csrf, context
from carebound.web._page import SignedIn, render
from carebound.web._pages_dashboard import SUPERVISOR
from carebound.web._problems import Problem
from carebound.web._purge import keep_report, kept_report, purge_ended

PAGE = 50
STATUSES = ("running", "paused", "waiting", "completed", "failed", "budget_exhausted",
            "cancelled", "quarantined")  # fmt: skip


def _day(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise Problem(
            status=422, detail=f"{name} {echo_id(value)} is not a date", hint="use YYYY-MM-DD"
        ) from None


def _requester(value: str) -> str | None:
    """A searched requester in the form runs store it ('Sam' finds sam's runs)."""
    return normalize_reviewer_id(value, what="requester") if value.strip() else None


def runs_page(
    request: Request,
    who: SignedIn,
    *,
    status: Annotated[str, Query(max_length=30)] = "",
    agent: Annotated[str, Query(max_length=100)] = "",
    requester: Annotated[str, Query(max_length=200)] = "",
    patient: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Runs, newest first, filtered; a supervisor's are everyone's."""
    if status and status not in STATUSES:
        raise Problem(status=422, detail=f"unknown status {status!r}", hint=", ".join(STATUSES))
    supervisor = SUPERVISOR in who.roles
    where = RunFilter(
        status=status or None,
        agent=agent or None,
        requester=(_requester(requester) if supervisor else who.id),
        patient_ref=patient or None,
        created_from=_day(since, "since"),
    )
    runner = context(request).runner
    page = runner.search_runs(where, limit=PAGE, offset=offset)
    values = {
        "runs": page.runs,
        "next_offset": page.next_offset,
        "query": {
            "status": status,
            "agent": agent,
            "requester": requester,
            "patient": patient,
            "since": since,
        },
        "statuses": STATUSES,
        "agents": runner.agent_names,
        "supervisor": supervisor,
        "final": FINAL_STATUSES,
        "offset": offset,
        "max_days": MAX_DAYS,
    }
    return render(request, "runs.html", values, who=who)


def cancel_run(
    request: Request,
    who: SignedIn,
    run_id: str,
    reason: Annotated[str, Form(min_length=1, max_length=200)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    """Cancel a run (supervisors; the reason is audited)."""
    check_csrf(who.session, csrf_token)
    if SUPERVISOR not in who.roles:
        raise Problem(
            status=403, detail="cancelling runs is for the supervisor role", code="wrong_role"
        )
    context(request).runner.cancel(run_id, by=who.id, reason=reason)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def purge_runs(
    request: Request,
    who: SignedIn,
    older_than_days: Annotated[int, Form(ge=1, le=MAX_DAYS)],
    dry_run: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    """Purge the runs that ended more than ``older_than_days`` ago (supervisors; the audit
    chains go to the server's archive first), then redirect to the report (a reload of the
    report page purges nothing again)."""
    check_csrf(who.session, csrf_token)
    if SUPERVISOR not in who.roles:
        raise Problem(
            status=403, detail="purging runs is for the supervisor role", code="wrong_role"
        )
    report = purge_ended(request, older_than_days=older_than_days, dry_run=dry_run, by=who.id)
    report_id = keep_report(request, report, by=who.id, days=older_than_days)
    return RedirectResponse(f"/runs/purged/{report_id}", status_code=303)


def purge_report(request: Request, who: SignedIn, report_id: str) -> HTMLResponse:
    """The report of a purge this reviewer made from the form, kept for an hour."""
    kept = kept_report(request, report_id, by=who.id)
    if kept is None:
        raise Problem(
            status=404,
            detail="no such purge report (reports are kept for an hour, for who purged)",
            hint="see the runs that are left on the Runs page",
        )
    report, days = kept
    return render(request, "purged.html", {"report": report, "days": days}, who=who)
