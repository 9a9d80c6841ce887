"""What the pages and the API show: inbox rows, masked packets, a run's calls and timeline, and
who may see what.

Access rule: a person or service sees and decides a hold only if it holds the hold's required
role; it sees a run if it holds the role of one of the run's holds (or started the run).
Services (API tokens) see every run, since they start them, but holds only of their roles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import NotFoundError, echo_id
from carebound._format import detail_line, inbox_row, inline
from carebound._phi import PhiPolicy
from carebound.approvals import ApprovalView
from carebound.audit import AuditEvent
from carebound.engine.results import DecideResult, RunView
from carebound.engine.runner import Runner
from carebound.web._problems import Problem


def when(value: datetime | None) -> str:
    """A moment for people: ``2026-03-01 09:30 UTC``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class InboxQuery(BaseModel):
    """Inbox filters and paging (query parameters)."""

    role: str | None = Field(default=None, max_length=100, description="Only this role.")
    agent: str | None = Field(default=None, max_length=100, description="Only this agent.")
    overdue: bool = Field(default=False, description="Only holds past their deadline.")
    offset: int = Field(default=0, ge=0, le=100_000, description="Skip this many holds.")


class InboxItem(BaseModel):
    """One paused step in an inbox."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    run_id: str
    agent: str
    tool: str
    risk: str
    required_role: str
    deadline: datetime
    due: str = Field(description="The deadline relative to now, e.g. 'in 23h', 'overdue 2h'.")
    overdue: bool
    summary: str = Field(description="What is being decided, in one line.")
    args_hash: str = Field(description="Decisions are bound to this hash of the call.")
    two_person: bool
    approvers: list[str]


class ParkedItem(BaseModel):
    """A run waiting for a system that is down (the inboxes' second section)."""

    run_id: str
    agent: str
    system: str = Field(description="The system that is down (ehr, payer, office...).")
    retry_at: datetime | None = Field(description="When the run tries the system again.")
    retry: str | None = Field(description="The same, relative to now ('in 5m').")
    reason: str | None = Field(description="Why the run waits (names the system; no PHI).")
    handed_to: str | None = Field(
        description="The role the case was handed to after the pack's limit (null: not yet)."
    )


def inbox_item(view: ApprovalView, now: datetime) -> InboxItem:
    """An inbox row of a pending approval."""
    return InboxItem(**inbox_row(view, now))


def pending_for(
    runner: Runner,
    roles: Iterable[str] | None,
    *,
    agent: str | None,
    overdue: bool,
    limit: int,
    offset: int,
) -> list[ApprovalView]:
    """Pending holds of any of ``roles`` (None: every role), most urgent first, one page."""
    if roles is None:
        return runner.pending(agent=agent, overdue=overdue, limit=limit, offset=offset)
    seen: dict[str, ApprovalView] = {}
    for role in sorted(set(roles)):
        views = runner.pending(role=role, agent=agent, overdue=overdue, limit=offset + limit)
        for view in views:
            seen.setdefault(view.request.approval_id, view)
    ordered = sorted(seen.values(), key=lambda v: (v.deadline, v.request.approval_id))
    return ordered[offset : offset + limit]


def tool_touches_phi(runner: Runner, view: ApprovalView) -> bool:
    """Whether the held call's arguments may hold PHI (unknown tools are assumed to)."""
    return PhiPolicy.for_agent(runner, view.request.agent).tool_touches_phi(view.request.tool)


def masked(runner: Runner, view: ApprovalView) -> ApprovalView:
    """The approval as shown before a reveal: PHI facts and PHI arguments masked."""
    return PhiPolicy.for_agent(runner, view.request.agent).approval(view)


def approval_for(runner: Runner, approval_id: str, roles: Iterable[str]) -> ApprovalView:
    """The approval, if the viewer holds its role; a 404 otherwise (no hint it exists)."""
    try:
        view = runner.approval(approval_id)
    except NotFoundError:
        view = None
    if view is None or view.required_role not in set(roles):
        raise Problem(
            status=404,
            detail=f"no approval {echo_id(approval_id)} for your roles",
            hint="open holds from your inbox",
        )
    return view


def _hold_ids(runner: Runner, run: RunView) -> list[str]:
    """Ids of every hold the run has had, oldest first (from its audit trail)."""
    ids = [
        str(e.detail["approval_id"])
        for e in runner.audit(run.run_id)
        if e.action == "hold" and e.detail.get("approval_id")
    ]
    if run.record.pending_approval:
        ids.append(run.record.pending_approval)
    return list(dict.fromkeys(ids))


def run_approvals(runner: Runner, run: RunView) -> list[ApprovalView]:
    """Every hold of the run, oldest first."""
    views = [runner.approvals.get(i) for i in _hold_ids(runner, run)]
    return [v for v in views if v is not None]


def run_roles(runner: Runner, run: RunView) -> set[str]:
    """The roles of every hold the run has had (their current required role)."""
    return {view.required_role for view in run_approvals(runner, run)}


def run_for(runner: Runner, run_id: str, user: str, roles: Iterable[str]) -> RunView:
    """The run, if the viewer started it or holds the role of one of its holds; else a 404."""
    try:
        run = runner.get(run_id)
    except NotFoundError:
        run = None
    if run is None or not (run.record.requester == user or run_roles(runner, run) & set(roles)):
        raise Problem(
            status=404,
            detail=f"no run {echo_id(run_id)} for your roles",
            hint="open runs from the holds in your inbox",
        )
    return run


class CallRow(BaseModel):
    """A call the run made (or tried), as shown on the run's pages."""

    model_config = ConfigDict(frozen=True)

    index: int
    tool: str
    status: str
    args: str
    result: str
    reason: str
    approval_id: str | None


def call_rows(runner: Runner, run: RunView, *, reveal: bool = False) -> list[CallRow]:
    """The run's calls; PHI arguments and PHI tools' results masked unless ``reveal``."""
    policy = PhiPolicy.for_agent(runner, run.record.agent)
    rows = []
    for r in run.results:
        shown = r if reveal else policy.call(r)
        rows.append(
            CallRow(
                index=shown.index,
                tool=shown.tool,
                status=shown.status,
                args=_compact(shown.args),
                result=_compact(shown.result),
                reason=shown.reason or "",
                approval_id=shown.approval_id,
            )
        )
    return rows


def _compact(value: Any) -> str:
    if value is None or value == {}:
        return ""
    return inline(json.dumps(value, ensure_ascii=False, default=str), 160)


class TimelineRow(BaseModel):
    """One audit event, on one line."""

    model_config = ConfigDict(frozen=True)

    seq: int
    time: datetime
    actor: str
    action: str
    outcome: str
    detail: str
    approval_id: str | None


def masked_events(runner: Runner, run: RunView, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """A run's audit events with the data values recorded for PHI tools masked."""
    policy = PhiPolicy.for_agent(runner, run.record.agent)
    return policy.events(events)


def timeline(events: Sequence[AuditEvent]) -> list[TimelineRow]:
    """The audit trail as timeline rows (mask them first: :func:`masked_events`)."""
    rows = []
    for e in events:
        actor = e.actor.id + (f" ({e.actor.role})" if e.actor.role else "")
        approval = e.detail.get("approval_id")
        rows.append(
            TimelineRow(
                seq=e.seq,
                time=e.time,
                actor=f"{e.actor.kind}: {actor}",
                action=e.action,
                outcome=e.outcome,
                detail=detail_line(e.detail, 120),
                approval_id=approval if isinstance(approval, str) else None,
            )
        )
    return rows


def queued_url(runner: Runner, result: DecideResult, response: Response) -> str | None:
    """With workers (``drive="queue"``) a decision that ends the hold is stored and the run
    queued, not moved: the answer is 202 with the run's status URL (also the Location header),
    to poll for its next stop. None (and the answer unchanged) otherwise."""
    if runner.drive_mode != "queue" or result.outcome != "decided":
        return None
    url = f"/api/runs/{result.run.run_id}"
    response.status_code = 202
    response.headers["Location"] = url
    return url
