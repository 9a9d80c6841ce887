"""The sign-in pages: the home redirect, the sign-in form and its throttled check, sign-out.

The sign-in form carries the pre-session CSRF token; sign-out the session's, checked here
before anything else happens.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carebound._errors import CareboundError
from carebound._principal import normalize_reviewer_id
from carebound.web._context import (
    check_csrf,
    client_address,
    context,
    current_session,
    limit,
    response_is_secure,
    set_session_cookie,
)
from carebound.web._page import SignedIn, render
from carebound.web._problems import Problem
from carebound.web._sessions import COOKIE
from carebound.web._signin_throttle import DEVICE_COOKIE


def _safe_next(target: str | None) -> str:
    """Only same-site paths may follow sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/inbox"


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


def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (it gets a pre-sign-in session for its CSRF token)."""
    found = current_session(request)
    if found is not None and found[1].user and context(request).users.reviewer(found[1].user):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next))


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


def logout(
    request: Request, who: SignedIn, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """End the session."""
    check_csrf(who.session, csrf_token)
    context(request).sessions.delete(who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
