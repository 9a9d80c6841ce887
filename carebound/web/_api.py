"""The JSON API for services: start runs on FHIR input, read them, list and decide holds,
deliver events, read the audit trail. Every call needs ``Authorization: Bearer <token>``
and the token's scope for it (read, start, deliver, decide, reveal, purge:
:mod:`carebound._tokens`); a token decides as the reviewer it is bound to, or as itself
(``token:NAME``). Errors are ``application/problem+json``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import CareboundError, NotFoundError, echo_id
from carebound._format import parked_row
from carebound._phi import PhiPolicy, mask_report, revealed_events
from carebound._principal import Provenance, normalize_reviewer_id
from carebound._report import EffectItem, Findings, PendingItem, run_report
from carebound._tokens import Scope, ServiceToken, effective_roles, require_scope
from carebound.approvals import ApprovalView, Approve, Decision, Edit, Escalate, Reject
from carebound.audit import AuditEvent, VerifyResult
from carebound.engine.results import RunView
from carebound.state.parked import parked_runs
from carebound.web._context import context, limit, service
from carebound.web._problems import Problem
from carebound.web._views import (
    InboxItem,
    InboxQuery,
    ParkedItem,
    inbox_item,
    masked,
    pending_for,
    queued_url,
    run_roles,
)

_bearer = HTTPBearer(auto_error=False, description="An API token from 'carebound tokens create'.")


@dataclass(frozen=True, kw_only=True)
class Caller:
    """The authenticated caller of an API request: its token, who it acts as, in which roles."""

    token: ServiceToken
    via: Provenance
    roles: frozenset[str] | None
    """Roles it may act in now (None: every role)."""

    def holds(self, role: str) -> bool:
        """Whether the caller may see and decide holds of ``role``."""
        return self.roles is None or role in self.roles


def _caller(request: Request) -> Caller:
    token = service(request)
    reviewer_roles = None
    if token.reviewer is not None:
        reviewer = context(request).users.reviewer(token.reviewer)
        reviewer_roles = list(reviewer.roles) if reviewer is not None else []
    roles = effective_roles(token, reviewer_roles)
    return Caller(
        token=token,
        via=token.provenance("api"),
        roles=frozenset(roles) if roles is not None else None,
    )


def _needs(scope: Scope, where: str) -> Callable[..., Caller]:
    """A dependency: the caller, refused (403 ``missing_scope``) without ``scope``."""

    def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        caller = _caller(request)
        require_scope(caller.token, scope, where=where)
        return caller

    return dependency


Reader = Annotated[Caller, Depends(_needs("read", "read runs, holds or audit trails"))]
Starter = Annotated[Caller, Depends(_needs("start", "start runs"))]
Deliverer = Annotated[Caller, Depends(_needs("deliver", "deliver events"))]
Decider = Annotated[Caller, Depends(_needs("decide", "decide holds"))]
Purger = Annotated[Caller, Depends(_needs("purge", "purge ended runs"))]


class ProblemOut(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="What went wrong, and where.")
    code: str | None = Field(default=None, description="Machine-readable reason, if any.")
    hint: str | None = Field(default=None, description="How to fix it.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 409, 422, 429)
}
router = APIRouter(prefix="/api", tags=["api"], responses=_ERRORS)


class RunOut(BaseModel):
    """A run: the ``carebound run --json`` report plus its record."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent: str
    requester: str
    status: str
    policy: str
    summary: str
    created_at: datetime
    updated_at: datetime
    wait_reason: str | None
    wait_until: datetime | None
    pending: list[PendingItem]
    findings: Findings
    effects: list[EffectItem]
    phi_masked: bool = Field(
        default=True, description="Mismatch values are masked unless read with reveal=true."
    )


def _run_out(view: RunView, *, reveal: bool = False) -> RunOut:
    report = run_report(view) if reveal else mask_report(run_report(view))
    record = view.record
    return RunOut(
        run_id=record.run_id,
        agent=record.agent,
        requester=record.requester,
        status=record.status,
        policy=record.policy,
        summary=record.summary,
        created_at=record.created_at,
        updated_at=record.updated_at,
        wait_reason=record.wait_reason,
        wait_until=record.wait_until,
        pending=report.pending,
        findings=report.findings,
        effects=report.effects,
        phi_masked=not reveal,
    )


class ApprovalPage(BaseModel):
    """One page of pending holds, most urgent first, and the runs waiting for a system that
    is down (as the CLI's and the web inbox's)."""

    approvals: list[InboxItem]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")
    parked: list[ParkedItem] = Field(
        description="Runs waiting for a system that is down, the next retry first (with "
        "'role': those handed to that role after the pack's limit; none with 'overdue'; the "
        "first 'limit', on the first page only)."
    )


class ApprovalOut(BaseModel):
    """One hold with its decision packet."""

    approval: ApprovalView
    phi_masked: bool


class DecisionIn(BaseModel):
    """A reviewer's decision, delivered by a service on the reviewer's behalf."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["approve", "reject", "edit", "escalate"]
    reviewer: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who decides: only the token's own principal is accepted (the reviewer a "
        "personal token is bound to, or 'token:NAME'); default: that principal.",
    )
    role: str | None = Field(
        default=None, max_length=100, description="Role decided in (default: the hold's role)."
    )
    args_hash: str = Field(
        min_length=1, max_length=128, description="The args hash the reviewer saw."
    )
    reason: str | None = Field(default=None, max_length=2000, description="Needed to reject.")
    note: str | None = Field(default=None, max_length=2000)
    args: dict[str, Any] | None = Field(default=None, description="New arguments (edit).")
    to_role: str | None = Field(default=None, max_length=100, description="Escalate to (role).")


class DecisionOut(BaseModel):
    """What a decision did."""

    approval_id: str
    decision: str
    outcome: str = Field(description="decided, awaiting_second_approver or escalated.")
    run: RunOut
    status_url: str | None = Field(default=None, description="Queue mode (202): the run's URL.")


class EventIn(BaseModel):
    """An external event (e.g. a faxed document arrived) for the runs waiting on it."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(min_length=1, max_length=500, description="Match key runs wait for.")
    payload: dict[str, Any] = Field(default_factory=dict)
    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Delivering the same id twice is a no-op (default: a new id).",
    )


class EventOut(BaseModel):
    """Which runs an event was delivered to."""

    event_id: str
    woken: list[str]
    """Runs subscribed to the match key: woken now if waiting, else it is queued for their
    next wait."""


class AuditOut(BaseModel):
    """A run's audit trail and whether its hash chain is intact."""

    run_id: str
    events: list[AuditEvent]
    verify: VerifyResult
    phi_masked: bool = Field(
        default=True, description="Values recorded for PHI tools are masked unless reveal=true."
    )


# -- runs -----------------------------------------------------------------------------------


def _requester(caller: Caller, named: str | None) -> str:
    """Who a run is started for: a bound token's reviewer (a body naming someone else is
    refused, so a token cannot start runs in another person's name), or the person a service
    token names."""
    bound = caller.token.reviewer
    if bound is None:
        if named is None:
            raise Problem(
                status=422,
                detail="field 'requester' is required: this token acts as itself, not as a "
                "reviewer",
                code="invalid_request",
                hint="name the person the run is started for",
            )
        return named
    try:
        same = named is None or normalize_reviewer_id(named) == normalize_reviewer_id(bound)
    except CareboundError:
        same = False
    if not same:
        raise Problem(
            status=403,
            detail=f"this token is bound to reviewer {bound!r} and may not start runs for "
            "anyone else",
            code="principal_mismatch",
            hint="omit 'requester', or use a token bound to that person",
        )
    return bound


def _reveal_run(request: Request, caller: Caller, run: RunView, what: str) -> None:
    """Check that the caller may see the run's PHI (the ``reveal`` scope and the role of one
    of its holds) and record the view (``view_phi``)."""
    require_scope(caller.token, "reveal", where="see PHI")
    runner = context(request).runner
    roles = run_roles(runner, run)
    if caller.roles is not None and not roles & caller.roles:
        raise Problem(
            status=403,
            detail=f"this token holds none of the roles of run {run.run_id}'s holds",
            code="wrong_role",
            hint="read it without reveal (PHI masked), or use a token of one of: "
            + (", ".join(sorted(roles)) or "(the run has no holds: a '*' token)"),
        )
    runner.reveal_run(
        run.run_id, viewer=caller.via.principal, roles=roles, via=caller.via, what=what
    )


@router.get("/runs/{run_id}")
def get_run(request: Request, caller: Reader, run_id: str, reveal: bool = False) -> RunOut:
    """A run's status, findings, pending hold and effects; mismatch values masked unless
    ``reveal`` (an audited view that needs the ``reveal`` scope and a role of the run)."""
    view = context(request).runner.get(run_id)
    if reveal:
        _reveal_run(request, caller, view, "run")
    return _run_out(view, reveal=reveal)


@router.get("/runs/{run_id}/audit")
def get_audit(request: Request, caller: Reader, run_id: str, reveal: bool = False) -> AuditOut:
    """A run's audit trail, oldest first, with the result of checking its hash chain; the
    values recorded for PHI tools masked unless ``reveal`` (audited, as for the run)."""
    runner = context(request).runner
    trail = runner.audit_trail(run_id)  # an unreadable entry is a broken chain, not a 400
    events = trail.events
    if reveal:
        _reveal_run(request, caller, runner.get(run_id), "audit")
        events = revealed_events(runner, run_id, events)
    else:
        policy = PhiPolicy.for_run(runner, run_id)
        events = policy.events(events)
    return AuditOut(run_id=run_id, events=events, verify=trail.verify, phi_masked=not reveal)


# -- holds ----------------------------------------------------------------------------------


def _approval(request: Request, caller: Caller, approval_id: str) -> ApprovalView:
    try:
        view = context(request).runner.approval(approval_id)
    except NotFoundError:
        view = None
    if view is None or not caller.holds(view.required_role):
        raise Problem(
            status=404, detail=f"no approval {echo_id(approval_id)} for this token's roles"
        )
    return view


class ApprovalQuery(InboxQuery):
    """Filters and paging of the pending holds."""

    limit: int = Field(default=50, ge=1, le=200, description="At most this many holds.")


@router.get("/approvals")
def list_approvals(
    request: Request, caller: Reader, query: Annotated[ApprovalQuery, Query()]
) -> ApprovalPage:
    """Pending holds of the token's roles, most urgent first."""
    runner = context(request).runner
    if query.role is not None and not caller.holds(query.role):
        raise Problem(status=403, detail=f"this token may not act in role {query.role!r}")
    roles: list[str] | None = [query.role] if query.role else None
    if query.role is None and caller.roles is not None:
        roles = sorted(caller.roles)
    views = pending_for(
        runner,
        roles,
        agent=query.agent,
        overdue=query.overdue,
        limit=query.limit + 1,
        offset=query.offset,
    )
    now = runner.clock.now()
    more = len(views) > query.limit
    parked = (
        []
        if query.overdue or query.offset
        else parked_runs(runner.client, prefix=runner.prefix, agent=query.agent,
                         handed_to=query.role)[: query.limit]
    )  # fmt: skip
    return ApprovalPage(
        approvals=[inbox_item(v, now) for v in views[: query.limit]],
        limit=query.limit,
        offset=query.offset,
        next_offset=query.offset + query.limit if more else None,
        parked=[ParkedItem(**parked_row(p, now)) for p in parked],
    )


@router.get("/approvals/{approval_id}")
def get_approval(
    request: Request, caller: Reader, approval_id: str, reveal: bool = False
) -> ApprovalOut:
    """A hold and its decision packet; PHI masked unless ``reveal`` (an audited view that
    needs the ``reveal`` scope)."""
    runner = context(request).runner
    view = _approval(request, caller, approval_id)
    if reveal:
        require_scope(caller.token, "reveal", where="see PHI")
        view = runner.reveal(
            approval_id, viewer=caller.via.principal, role=view.required_role, via=caller.via
        )
        return ApprovalOut(approval=view, phi_masked=False)
    return ApprovalOut(approval=masked(runner, view), phi_masked=True)


def _principal_of(caller: Caller, body: DecisionIn) -> str:
    """The reviewer a decision is made as: the caller's principal; a body naming anyone else
    is refused (a token may never speak for several people)."""
    principal = caller.via.principal
    if body.reviewer is None:
        return principal
    try:
        named = normalize_reviewer_id(body.reviewer)
    except CareboundError:
        named = body.reviewer
    if named != principal:
        raise Problem(
            status=403,
            detail=f"token {caller.token.name!r} decides as {principal!r}, not as "
            f"{body.reviewer!r}",
            code="principal_mismatch",
            hint="omit 'reviewer', or give each reviewer a personal token: "
            "carebound tokens create NAME --as REVIEWER --scope decide",
        )
    return principal


def _decision(body: DecisionIn, role: str, caller: Caller) -> Decision:
    base: dict[str, Any] = {
        "reviewer": _principal_of(caller, body),
        "role": role,
        "args_hash": body.args_hash,
        "note": body.note,
        "via": caller.via,
    }
    if body.kind == "approve":
        return Approve(**base)
    if body.kind == "reject":
        reason = (body.reason or "").strip()
        if not reason:
            raise Problem(
                status=422, detail="'reason' is required to reject", code="reason_required"
            )
        return Reject(**base, reason=reason)
    if body.kind == "edit":
        if body.args is None:
            raise Problem(status=422, detail="'args' is required to edit", code="invalid_edit")
        return Edit(**base, args=body.args)
    if not body.to_role:
        raise Problem(status=422, detail="'to_role' is required to escalate")
    return Escalate(**base, to_role=body.to_role)


@router.post("/approvals/{approval_id}/decision")
def decide(
    request: Request, response: Response, caller: Decider, approval_id: str, body: DecisionIn
) -> DecisionOut:
    """Apply a decision as the token's principal. 409 if someone decided first or the call
    changed; 403 if the body names another reviewer. Queue mode: 202 once stored (queued_url)."""
    ctx = context(request)
    view = _approval(request, caller, approval_id)
    role = body.role or view.required_role
    if not caller.holds(role):
        raise Problem(
            status=403, detail=f"this token may not act in role {echo_id(role)}", code="wrong_role"
        )
    decision = _decision(body, role, caller)
    limit(ctx, "decide", f"token:{caller.token.name}", ctx.settings.decisions_per_actor)
    result = ctx.runner.decide(approval_id, decision)
    status_url = queued_url(ctx.runner, result, response)
    return DecisionOut(
        approval_id=approval_id,
        decision=body.kind,
        outcome=result.outcome,
        run=_run_out(result.run),
        status_url=status_url,
    )


# -- events ---------------------------------------------------------------------------------


@router.post("/events")
def deliver(request: Request, caller: Deliverer, body: EventIn) -> EventOut:
    """Deliver an event to the runs subscribed to its match key; returns them (a waiting run
    is woken now, a busy or paused one reads the event at its next wait)."""
    event_id = body.event_id or f"ev-{uuid.uuid4().hex[:12]}"
    woken = context(request).runner.deliver(body.match, body.payload, event_id=event_id)
    return EventOut(event_id=event_id, woken=woken)
