"""The reviewer's pages: sign-in, the inbox, a hold's decision packet, a run and its audit trail.

Every page needs a signed-in reviewer; every form that changes something carries the session's
CSRF token and is checked here, server-side, before anything else happens.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from carebound._errors import CareboundError, NotFoundError
from carebound._principal import normalize_reviewer_id
from carebound._report import run_report
from carebound.approvals import ApprovalView, Approve, Decision, Edit, Escalate, Reject
from carebound.guardrails import escalation_targets
from carebound.web._context import (
    Viewer,
    WebContext,
    check_csrf,
    client_address,
    context,
    current_session,
    json_viewer,
    limit,
    response_is_secure,
    set_session_cookie,
    viewer,
)
from carebound.web._forms import arg_fields, parse_arg_fields
from carebound.web._problems import Problem, problem_for
from carebound.web._sessions import COOKIE
from carebound.web._signin_throttle import DEVICE_COOKIE
from carebound.web._views import (
    InboxQuery,
    approval_for,
    call_rows,
    inbox_item,
    masked,
    masked_events,
    pending_for,
    run_approvals,
    run_for,
    run_roles,
    timeline,
    tool_touches_phi,
    when,
)

router = APIRouter(include_in_schema=False)

SignedIn = Annotated[Viewer, Depends(viewer)]
MAX_TEXT = 2000
"""Longest reason or note accepted with a decision."""


def render(
    request: Request,
    template: str,
    values: dict[str, Any],
    *,
    who: Viewer | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page (autoescaped); PHI-bearing pages are never cached."""
    ctx = context(request)
    page = {"viewer": who, "csrf": who.session.csrf if who else "", "error": None, **values}
    response = ctx.templates.TemplateResponse(
        request, template, page, status_code=status, headers=headers
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str:
    """Only same-site paths may follow sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/inbox"


# -- sign-in --------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    """The inbox is the home page."""
    return RedirectResponse("/inbox", status_code=303)


def _login_page(
    request: Request, next_path: str, *, error: str | None = None, status: int = 200,
    headers: dict[str, str] | None = None, fresh: bool = False,
) -> HTMLResponse:  # fmt: skip
    ctx = context(request)
    found = None if fresh else current_session(request)
    new_id = None
    if found is None or found[1].user is not None:
        new_id, session = ctx.sessions.create(None)
    else:
        session = found[1]
    response = render(
        request,
        "login.html",
        {"login_csrf": session.csrf, "next": next_path, "error": error},
        who=None,
        status=status,
        headers=headers,
    )
    if new_id is not None:
        set_session_cookie(request, response, new_id)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (it gets a pre-sign-in session for its CSRF token)."""
    found = current_session(request)
    if found is not None and found[1].user and context(request).users.reviewer(found[1].user):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    user: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/inbox",
) -> Response:
    """Check a reviewer's password; on success issue a new session (rotation)."""
    ctx = context(request)
    target = _safe_next(next)
    found = current_session(request)
    if found is None or found[1].user is not None or not found[1].csrf_ok(csrf_token):
        return _login_page(
            request,
            target,
            error="The sign-in form expired or was not sent from this site. Please try again.",
            status=403,
            fresh=True,
        )
    user = user.strip()
    account = _account_key(user)
    subject = ctx.signin.subject(account, request.cookies.get(DEVICE_COOKIE))
    try:
        limit(ctx, "signin-client", client_address(request), ctx.settings.signin_per_client)
    except Problem as exc:
        return _login_page(request, target, error=exc.detail, status=429, headers=exc.headers)
    wait = ctx.signin.wait_s(subject)
    if wait:
        return _login_page(
            request,
            target,
            error=f"Too many wrong passwords for this reviewer id: try again in {wait} s.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    version = ctx.users.credential_version(user)  # read first: a change meanwhile wins
    reviewer = ctx.users.verify(user, password)
    if reviewer is None:
        ctx.signin.failed(subject)
        return _login_page(request, target, error="Wrong reviewer id or password.", status=401)
    ctx.sessions.delete(found[0])
    device = ctx.signin.succeeded(subject, account, request.cookies.get(DEVICE_COOKIE))
    session_id, _ = ctx.sessions.create(reviewer.id, credential_version=version)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, session_id)
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=ctx.settings.signin_backoff.device_ttl_s,
        httponly=True,
        samesite="lax",
        secure=response_is_secure(request),
        path="/login",
    )
    return response


def _account_key(user: str) -> str:
    """The account a sign-in attempt counts against: the normal form of the id typed (an id
    that cannot be normalised still counts, as itself)."""
    try:
        return normalize_reviewer_id(user)
    except CareboundError:
        return user


@router.post("/logout")
def logout(
    request: Request, who: SignedIn, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """End the session."""
    check_csrf(who.session, csrf_token)
    context(request).sessions.delete(who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- inbox ----------------------------------------------------------------------------------


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


Filters = Annotated[InboxQuery, Query()]


@router.get("/inbox")
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


@router.get("/inbox.json")
def inbox_json(
    request: Request, who: Annotated[Viewer, Depends(json_viewer)], query: Filters
) -> JSONResponse:
    """The inbox rows, for the page's polling script."""
    ctx = context(request)
    items, more = _inbox(ctx, who, query)
    now = ctx.runner.clock.now().isoformat()
    return JSONResponse(
        {"items": items, "more": more, "now": now}, headers={"Cache-Control": "no-store"}
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


@router.get("/approvals/{approval_id}")
def approval_page(request: Request, who: SignedIn, approval_id: str) -> HTMLResponse:
    """A hold's decision packet, PHI masked."""
    view = approval_for(context(request).runner, approval_id, who.roles)
    return packet_page(request, who, view, revealed=False)


@router.post("/approvals/{approval_id}/reveal")
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


@router.post("/approvals/{approval_id}/decision")
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


# -- runs -----------------------------------------------------------------------------------


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
            "events": timeline(events if revealed else masked_events(runner, run, events)),
            "now": runner.clock.now(),
            "decided": decided,
            "outcome": outcome,
            "revealed": revealed,
            "can_reveal": bool(roles & set(who.roles)),
        },
        who=who,
    )


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    who: SignedIn,
    run_id: str,
    decided: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=50)] = None,
) -> HTMLResponse:
    """A run: its state, holds, calls, effects and timeline (PHI masked)."""
    return _run_page(request, who, run_id, revealed=False, decided=decided, outcome=outcome)


@router.post("/runs/{run_id}/reveal")
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
            "events": trail.events if revealed else masked_events(runner, run, trail.events),
            "verify": trail.verify,
            "revealed": revealed,
            "can_reveal": bool(roles & set(who.roles)),
        },
        who=who,
    )


@router.get("/runs/{run_id}/audit")
def audit_page(request: Request, who: SignedIn, run_id: str) -> HTMLResponse:
    """A run's audit trail and whether its hash chain is intact (PHI masked)."""
    return _audit_page(request, who, run_id, revealed=False)


@router.post("/runs/{run_id}/audit/reveal")
def reveal_audit(
    request: Request,
    who: SignedIn,
    run_id: str,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """The audit trail with the values recorded for PHI tools (audited view)."""
    check_csrf(who.session, csrf_token)
    return _audit_page(request, who, run_id, revealed=True)
