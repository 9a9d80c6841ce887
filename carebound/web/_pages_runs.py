"""The reviewer's pages for runs: a run, its audit trail, and revealing their masked values.

Every page needs a signed-in reviewer of one of the run's roles; every reveal form carries the
session's CSRF token, checked here before anything else happens.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse

from carebound._phi import revealed_events
from carebound._report import run_report
from carebound.web._context import Viewer, check_csrf, context
from carebound.web._page import SignedIn, render
from carebound.web._views import (
    call_rows,
    masked_events,
    run_approvals,
    run_for,
    run_roles,
    timeline,
)


def _run_page(
    request: Request,
    who: Viewer,
    run_id: str,
    *,
    revealed: bool,
    decided: str | None = None,
    outcome: str | None = None,
) -> HTMLResponse:
    runner = context(request).runner
    run = run_for(runner, run_id, who.id, who.roles)
    roles = run_roles(runner, run)
    if revealed:
        runner.reveal_run(run_id, viewer=who.id, roles=roles, via=who.via, what="run")
    events = runner.audit(run_id)
    return render(
        request,
        "run.html",
        {
            "run": run,
            "report": run_report(run),
            "holds": run_approvals(runner, run),
            "calls": call_rows(runner, run, reveal=revealed),
            "events": timeline(
                revealed_events(runner, run_id, events)
                if revealed
                else masked_events(runner, run, events)
            ),
            "now": runner.clock.now(),
            "decided": decided,
            "outcome": outcome,
            "revealed": revealed,
            "can_reveal": bool(roles & set(who.roles)),
        },
        who=who,
    )


def run_page(
    request: Request,
    who: SignedIn,
    run_id: str,
    decided: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=50)] = None,
) -> HTMLResponse:
    """A run: its state, holds, calls, effects and timeline (PHI masked)."""
    return _run_page(request, who, run_id, revealed=False, decided=decided, outcome=outcome)


def reveal_run(
    request: Request,
    who: SignedIn,
    run_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """The run with its PHI, for a reviewer holding a role of its holds (audited)."""
    check_csrf(who.session, csrf_token)
    return _run_page(request, who, run_id, revealed=True)


def _audit_page(request: Request, who: Viewer, run_id: str, *, revealed: bool) -> HTMLResponse:
    runner = context(request).runner
    run = run_for(runner, run_id, who.id, who.roles)
    roles = run_roles(runner, run)
    if revealed:
        runner.reveal_run(run_id, viewer=who.id, roles=roles, via=who.via, what="audit")
    trail = runner.audit_trail(run_id)  # an unreadable entry is a broken chain, not a 400
    return render(
        request,
        "audit.html",
        {
            "run": run,
            "events": revealed_events(runner, run_id, trail.events)
            if revealed
            else masked_events(runner, run, trail.events),
            "verify": trail.verify,
            "revealed": revealed,
            "can_reveal": bool(roles & set(who.roles)),
        },
        who=who,
    )


def audit_page(request: Request, who: SignedIn, run_id: str) -> HTMLResponse:
    """A run's audit trail and whether its hash chain is intact (PHI masked)."""
    return _audit_page(request, who, run_id, revealed=False)


def reveal_audit(
    request: Request,
    who: SignedIn,
    run_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """The audit trail with the values recorded for PHI tools (audited view)."""
    check_csrf(who.session, csrf_token)
    return _audit_page(request, who, run_id, revealed=True)
