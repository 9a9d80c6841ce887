"""What every request handler shares (the runner, stores, settings, templates), and who is
asking: a signed-in reviewer (session cookie) or a service (bearer token)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from carebound._principal import Provenance
from carebound.engine.runner import Runner
from carebound.guardrails import Reviewer
from carebound.tools.connectors import WorldSpec
from carebound.web._problems import Problem
from carebound.web._ratelimit import RateLimit, RateLimiter
from carebound.web._sessions import COOKIE, Session, SessionStore
from carebound.web._settings import WebSettings
from carebound.web._signin_throttle import SignInThrottle
from carebound.web._users import ServiceToken, UserStore

WorldFactory = Callable[[Mapping[str, Any]], WorldSpec]
"""Builds the world a run started over the API is seeded with, from its case (the simulator's)."""


@dataclass(frozen=True, kw_only=True)
class WebContext:
    """The app's collaborators, built once by :func:`carebound.web.create_app`."""

    runner: Runner
    users: UserStore
    sessions: SessionStore
    limiter: RateLimiter
    signin: SignInThrottle
    settings: WebSettings
    templates: Jinja2Templates
    world: WorldFactory | None


def context(request: Request) -> WebContext:
    """The app's context."""
    ctx = request.app.state.carebound
    assert isinstance(ctx, WebContext)
    return ctx


class SignInRequired(Exception):  # noqa: N818 - a redirect signal, not an error
    """A page was asked for without a live session: the browser goes to the sign-in page."""


@dataclass(frozen=True, kw_only=True)
class Viewer:
    """The signed-in reviewer of a request."""

    reviewer: Reviewer
    session: Session
    session_id: str

    @property
    def id(self) -> str:
        """The reviewer's id."""
        return self.reviewer.id

    @property
    def roles(self) -> list[str]:
        """The roles the reviewer holds."""
        return list(self.reviewer.roles)

    @property
    def via(self) -> Provenance:
        """The provenance of what this reviewer does in the web inbox."""
        return Provenance(channel="web", principal=self.id, kind="reviewer", authenticated=True)


def current_session(request: Request) -> tuple[str, Session] | None:
    """The request's live session (anonymous or signed in), with its id."""
    session_id = request.cookies.get(COOKIE)
    session = context(request).sessions.get(session_id)
    if session is None or session_id is None:
        return None
    return session_id, session


def viewer(request: Request) -> Viewer:
    """The signed-in reviewer (a FastAPI dependency of every page).

    Raises:
        SignInRequired: no live signed-in session, its reviewer left the directory, or their
            password changed or was removed since they signed in.
    """
    found = current_session(request)
    if found is not None and found[1].user is not None:
        users = context(request).users
        reviewer = users.reviewer(found[1].user)
        if reviewer is not None and found[1].credential_version == users.credential_version(
            reviewer.id
        ):
            return Viewer(reviewer=reviewer, session=found[1], session_id=found[0])
        # The reviewer left the directory, or their password changed or was removed.
        context(request).sessions.delete(found[0])
    raise SignInRequired


def json_viewer(request: Request) -> Viewer:
    """The signed-in reviewer of a JSON request made by a page (401 instead of a redirect)."""
    try:
        return viewer(request)
    except SignInRequired:
        raise Problem(status=401, detail="sign in first", hint="open /login") from None


def service(request: Request) -> ServiceToken:
    """The service presenting ``Authorization: Bearer <token>`` (an API dependency).

    Raises:
        Problem: 401 without a valid token.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    found = None
    if scheme.lower() == "bearer" and token.strip():
        found = context(request).users.token(token.strip())
    if found is None:
        raise Problem(
            status=401,
            detail="a valid API token is required (Authorization: Bearer <token>)",
            hint="create one with 'carebound tokens create NAME'",
            headers={"WWW-Authenticate": 'Bearer realm="carebound"'},
        )
    return found


def check_csrf(session: Session, presented: str | None) -> None:
    """Refuse a state-changing form whose CSRF token is not the session's."""
    if not session.csrf_ok(presented):
        raise Problem(
            status=403,
            detail="the form's security token is missing or wrong",
            code="csrf",
            hint="reload the page and submit the form again",
        )


def limit(ctx: WebContext, bucket: str, who: str, rule: RateLimit) -> None:
    """Count one hit against a rate limit; a 429 when over it."""
    retry = ctx.limiter.hit(bucket, who, rule)
    if retry is not None:
        raise Problem(
            status=429,
            detail=f"too many requests ({rule.limit} per {rule.window_s} s); try again in "
            f"{retry} s",
            code="rate_limited",
            hint="wait and try again",
            headers={"Retry-After": str(retry)},
        )


def client_address(request: Request) -> str:
    """The client's address: the TCP peer, or what a trusted proxy says it is
    (``WebSettings.trusted_proxies``)."""
    return request.client.host if request.client else "unknown"


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    """Send the session cookie: HttpOnly, SameSite=Lax, Secure over https."""
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=response_is_secure(request),
        path="/",
    )


def response_is_secure(request: Request) -> bool:
    """Whether cookies set on this answer are marked ``Secure``."""
    secure = context(request).settings.secure_cookies
    return request.url.scheme == "https" if secure is None else secure
