"""The app factory: pages for reviewers, a JSON API for services, one error boundary."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from carebound._errors import CareboundError
from carebound._format import MASK
from carebound.engine.runner import Runner
from carebound.metrics import registry as figures_registry
from carebound.tools.connectors import WorldSpec
from carebound.web import _api, _api_runs, _docs, _page, _pages
from carebound.web._context import SignInRequired, WebContext, WorldFactory, context, viewer
from carebound.web._headers import SecurityHeadersMiddleware
from carebound.web._problems import (
    PROBLEM_JSON,
    CatchAllMiddleware,
    Problem,
    problem_for,
    validation_problem,
)
from carebound.web._ratelimit import RateLimiter
from carebound.web._sessions import SessionStore
from carebound.web._settings import WebSettings
from carebound.web._signin_throttle import SignInThrottle
from carebound.web._users import UserStore
from carebound.web._views import when

_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
"""Codes of the framework's own answers (a body that is not JSON, no such route, a wrong
method), so every problem document carries a ``code`` a client can match on."""


def simulated_world(case: Mapping[str, Any]) -> WorldSpec:
    """The simulated connectors of a run, seeded from its case (as ``carebound run --case``)."""
    return WorldSpec.from_bundles(case, None)


def _bears(request: Request, token: str) -> bool:
    """Whether the request's ``Authorization`` header is ``Bearer <token>`` (constant time)."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("carebound.web", "templates"),
        autoescape=True,  # every value is escaped: fax text and documents may hold markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = when
    env.globals["MASK"] = MASK
    env.filters["short"] = lambda value, n=12: str(value)[:n]
    env.filters["pct"] = lambda value: f"{round(float(value) * 100)}%"
    return Jinja2Templates(env=env)


def _app_version() -> str:
    try:
        return version("carebound")
    except PackageNotFoundError:
        return "0"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.endswith(".json") or path == "/healthz"


def _answer(request: Request, problem: Problem) -> Response:
    if _wants_json(request):
        return JSONResponse(
            problem.body(),
            status_code=problem.status,
            media_type=PROBLEM_JSON,
            headers={**problem.headers, "Cache-Control": "no-store"},
        )
    try:
        who = viewer(request)
    except SignInRequired:
        who = None
    return _page.render(
        request,
        "error.html",
        {"problem": problem},
        who=who,
        status=problem.status,
        headers=problem.headers,
    )


def create_app(
    runner: Runner,
    *,
    users: UserStore,
    settings: WebSettings | None = None,
    world: WorldFactory | None = simulated_world,
) -> FastAPI:
    """The web inbox and JSON API on ``runner``.

    Args:
        runner: the runner whose runs and holds are served.
        users: reviewer passwords and service tokens; its policy pack is the directory of who
            may sign in, in which roles.
        settings: sessions, cookies, rate limits (defaults: :class:`WebSettings`).
        world: builds the simulated world a run started over the API runs against, from its
            case; None when the runner's own world factory reaches real systems.
    """
    settings = settings or WebSettings()
    app = FastAPI(
        title="carebound",
        version=_app_version(),
        summary="Reviewer inbox and service API of carebound: runs, holds, decisions, audit.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.carebound = WebContext(
        runner=runner,
        users=users,
        sessions=SessionStore(
            runner.client,
            prefix=runner.prefix,
            idle_s=settings.session_idle_s,
            max_s=settings.session_max_s,
            anonymous_s=settings.anonymous_session_s,
        ),
        limiter=RateLimiter(runner.client, prefix=runner.prefix),
        signin=SignInThrottle(runner.client, settings.signin_backoff, prefix=runner.prefix),
        settings=settings,
        templates=_templates(),
        world=world,
    )
    app.include_router(_api.router)
    app.include_router(_api_runs.router)
    app.include_router(_pages.router)
    app.mount("/static", StaticFiles(packages=[("carebound.web", "static")]), name="static")
    _docs.install(app)

    metrics = figures_registry(runner.client, prefix=runner.prefix)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus metrics (carebound.metrics): no PHI, bounded labels; with
        ``metrics_token`` set, only for a request that bears it."""
        wanted = settings.metrics_token
        if wanted is not None and not _bears(request, wanted):
            refusal = Problem(
                status=401,
                detail="/metrics needs the metrics token",
                code="metrics_token",
                hint="send 'Authorization: Bearer <CAREBOUND_METRICS_TOKEN>' (Prometheus: "
                "authorization.credentials_file in the scrape config)",
                headers={"WWW-Authenticate": 'Bearer realm="carebound metrics"'},
            )
            return JSONResponse(
                refusal.body(),
                status_code=401,
                media_type=PROBLEM_JSON,
                headers={**refusal.headers, "Cache-Control": "no-store"},
            )
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> dict[str, bool]:
        context(request).runner.ping()
        return {"ok": True}

    @app.exception_handler(SignInRequired)
    def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Problem)
    def _problem(request: Request, exc: Problem) -> Response:
        return _answer(request, exc)

    @app.exception_handler(CareboundError)
    def _carebound(request: Request, exc: CareboundError) -> Response:
        return _answer(request, problem_for(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _answer(request, validation_problem(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        problem = Problem(
            status=exc.status_code, detail=str(exc.detail), code=_HTTP_CODES.get(exc.status_code)
        )
        if exc.headers:
            problem.headers.update(exc.headers)
        return _answer(request, problem)

    app.add_middleware(CatchAllMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.trusted_proxies:
        # Outermost, so every layer below sees the client and scheme the proxy reports.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app
