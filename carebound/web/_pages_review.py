"""The reviewer's pages for holds: the inbox (HTML and JSON), a hold's decision packet, revealing
its masked values, and deciding it.

Every form that changes something carries the session's CSRF token and is checked here,
server-side, before anything else happens.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from carebound._errors import CareboundError, NotFoundError
from carebound._format import parked_row
from carebound.approvals import ApprovalView, Approve, Decision, Edit, Escalate, Reject
from carebound.guardrails import escalation_targets
from carebound.state.parked import parked_runs
from carebound.web._context import Viewer, WebContext, check_csrf, context, json_viewer, limit
from carebound.web._forms import arg_fields, parse_arg_fields
from carebound.web._page import SignedIn, render
from carebound.web._problems import Problem, problem_for
from carebound.web._views import (
    InboxQuery,
    approval_for,
    call_rows,
    inbox_item,
    masked,
    masked_events,
    pending_for,
    timeline,
    tool_touches_phi,
    when,
)

router = APIRouter(include_in_schema=False)

MAX_TEXT = 2000
"""Longest reason or note accepted with a decision."""


def _inbox(ctx: WebContext, who: Viewer, query: InboxQuery) -> tuple[list[dict[str, Any]], bool]:
    if query.role and query.role not in who.roles:
        raise Problem(
            status=403,
            detail=f"you do not hold role {query.role!r}",
            hint=f"your roles: {', '.join(who.roles)}",
        )
    size = ctx.settings.page_size
    views = pending_for(
        ctx.runner,
        [query.role] if query.role else who.roles,
        agent=query.agent or None,
        overdue=query.overdue,
        limit=size + 1,
        offset=query.offset,
    )
    now = ctx.runner.clock.now()
    items = [
        {
            **inbox_item(v, now).model_dump(mode="json"),
            "url": f"/approvals/{v.request.approval_id}",
            "deadline_text": when(v.deadline),
        }
        for v in views[:size]
    ]
    return items, len(views) > size


def _parked(ctx: WebContext, query: InboxQuery) -> list[dict[str, Any]]:
    """Runs waiting for a system that is down (with a role filter, those handed to that role
    after the pack's limit; none with the overdue filter: it narrows to holds)."""
    if query.overdue:
        return []
    runner = ctx.runner
    now = runner.clock.now()
    found = parked_runs(
        runner.client,
        prefix=runner.prefix,
        agent=query.agent or None,
        handed_to=query.role or None,
    )
    return [
        {
            **parked_row(p, now),
            "url": f"/runs/{p.record.run_id}",
            "retry_text": when(p.record.wait_until),
        }
        for p in found[: ctx.settings.page_size]
    ]


Filters = Annotated[InboxQuery, Query()]


def inbox(request: Request, who: SignedIn, query: Filters) -> HTMLResponse:
    """The reviewer's pending holds (only roles they hold), most urgent first."""
    ctx = context(request)
    items, more = _inbox(ctx, who, query)
    kept = {k: v for k, v in {"role": query.role, "agent": query.agent}.items() if v}
    if query.overdue:
        kept["overdue"] = "true"
    size = ctx.settings.page_size
    offset = query.offset
    return render(
        request,
        "inbox.html",
        {
            "items": items,
            "parked": _parked(ctx, query),
            "filters": query,
            "agents": ctx.runner.agent_names,
            "query": urlencode(kept),
            "offset": offset,
            "next_offset": offset + size if more else None,
            "prev_offset": max(offset - size, 0) if offset > 0 else None,
            "poll_ms": int(ctx.settings.poll_interval_s * 1000),
        },
        who=who,
    )


def inbox_json(
    request: Request, who: Annotated[Viewer, Depends(json_viewer)], query: Filters
) -> JSONResponse:
    """The inbox rows, for the page's polling script."""
    ctx = context(request)
    items, more = _inbox(ctx, who, query)
    now = ctx.runner.clock.now().isoformat()
    parked = _parked(ctx, query)
    return JSONResponse(
        {"items": items, "more": more, "parked": parked, "now": now},
        headers={"Cache-Control": "no-store"},
    )


# -- decision packet ------------------------------------------------------------------------


def packet_page(
    request: Request,
    who: Viewer,
    view: ApprovalView,
    *,
    revealed: bool,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The decision packet of a hold: PHI masked unless ``revealed`` (an audited view)."""
    runner = context(request).runner
    request_ = view.request
    try:
        spec = runner.agent(request_.agent).tools.get(request_.tool)
    except NotFoundError:
        spec = None
    phi_tool = tool_touches_phi(runner, view)
    pending = view.status == "pending"
    fields = (
        arg_fields(spec.args_schema, request_.args)
        if pending and spec is not None and (revealed or not phi_tool)
        else []
    )
    run = runner.get(request_.run_id)
    events = runner.audit(request_.run_id)
    pack = runner.pack_for(request_.run_id)
    held = {r for p in pack.reviewers for r in p.roles}  # only the pack's declared paths
    escalate_to = [
        r for r in escalation_targets(pack, request_) if r in held and r != view.required_role
    ]
    return render(
        request,
        "packet.html",
        {
            "view": view if revealed else masked(runner, view),
            "revealed": revealed,
            "phi_tool": phi_tool,
            "has_phi": phi_tool or any(f.phi for f in request_.packet.facts),
            "pending": pending,
            "tool_description": spec.description if spec else "",
            "fields": fields,
            "escalate_to": escalate_to,
            "run": run,
            "calls": call_rows(runner, run, reveal=revealed),
            "events": timeline(events if revealed else masked_events(runner, run, events)),
            "now": runner.clock.now(),
            "error": error,
        },
        who=who,
        status=status,
        headers=headers,
    )


def approval_page(request: Request, who: SignedIn, approval_id: str) -> HTMLResponse:
    """A hold's decision packet, PHI masked."""
    view = approval_for(context(request).runner, approval_id, who.roles)
    return packet_page(request, who, view, revealed=False)


def reveal(
    request: Request,
    who: SignedIn,
    approval_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """The packet with its PHI; the view is recorded in the run's audit trail."""
    check_csrf(who.session, csrf_token)
    runner = context(request).runner
    view = approval_for(runner, approval_id, who.roles)
    view = runner.reveal(approval_id, viewer=who.id, role=view.required_role, via=who.via)
    return packet_page(request, who, view, revealed=True)


async def decide(request: Request, who: SignedIn, approval_id: str) -> Response:
    """Approve, reject (with a reason), edit or escalate a hold."""
    form = await request.form(max_files=0, max_fields=200)
    return await run_in_threadpool(_decide, request, who, approval_id, form)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_TEXT:
        raise Problem(status=422, detail=f"{name} is longer than {MAX_TEXT} characters")
    return text


def _decision(ctx: WebContext, who: Viewer, view: ApprovalView, form: FormData) -> Decision:
    action = _text(form, "action")
    args_hash = _text(form, "args_hash")
    note = _text(form, "note") or None
    base: dict[str, Any] = {
        "reviewer": who.id,
        "role": view.required_role,
        "args_hash": args_hash,
        "note": note,
        "via": who.via,
    }
    if action == "approve":
        return Approve(**base)
    if action == "reject":
        reason = _text(form, "reason")
        if not reason:
            raise Problem(
                status=422,
                detail="a reason is required to reject",
                code="reason_required",
                hint="say why the call should not be made; the agent is told",
            )
        return Reject(**base, reason=reason)
    if action == "edit":
        request = view.request
        spec = ctx.runner.agent(request.agent).tools.get(request.tool)
        if spec is None:
            raise Problem(status=422, detail=f"tool {request.tool!r} is unknown here")
        args = parse_arg_fields(arg_fields(spec.args_schema, request.args), form)
        return Edit(**base, args=args)
    if action == "escalate":
        to_role = _text(form, "to_role")
        if not to_role:
            raise Problem(status=422, detail="choose the role to escalate to")
        return Escalate(**base, to_role=to_role)
    raise Problem(
        status=422,
        detail=f"unknown action {action[:40]!r}",
        hint="approve, reject, edit or escalate",
    )


def _decide(request: Request, who: Viewer, approval_id: str, form: FormData) -> Response:
    ctx = context(request)
    token = form.get("csrf_token")
    check_csrf(who.session, token if isinstance(token, str) else None)
    view = approval_for(ctx.runner, approval_id, who.roles)
    try:
        limit(ctx, "decide", f"reviewer:{who.id}", ctx.settings.decisions_per_actor)
        decision = _decision(ctx, who, view, form)
        result = ctx.runner.decide(approval_id, decision)
    except (Problem, CareboundError) as exc:
        problem = exc if isinstance(exc, Problem) else problem_for(exc)
        message = problem.detail
        if problem.code == "stale":
            message += ". The call changed since you opened it: review it again below."
        fresh = ctx.runner.approval(approval_id)
        if fresh.required_role not in who.roles:
            raise problem from None
        return packet_page(
            request,
            who,
            fresh,
            revealed=False,
            error=message,
            status=problem.status,
            headers=problem.headers,
        )
    query = urlencode({"decided": approval_id, "outcome": result.outcome})
    return RedirectResponse(f"/runs/{result.run.run_id}?{query}", status_code=303)
