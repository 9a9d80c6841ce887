"""Errors as HTTP answers: RFC 9457 problem details for the API, an error page for browsers.

Every carebound error maps to a 4xx with its message and hint (messages never echo PHI: the
FHIR reader, the gate and the decision checks are written that way). Anything else is a bug:
it is logged with an error id, its type and where it was raised — never its message, which
could hold PHI — and the client gets a bare 500 with the error id.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carebound._errors import (
    AlreadyDecidedError,
    CareboundError,
    DecisionRefusedError,
    LeaseLostError,
    NotFoundError,
    RunStateError,
    StoreUnavailableError,
)

log = logging.getLogger("carebound.web")

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Refusal codes of DecisionRefusedError: who is refused (403), what is out of date (409), and
# what is wrong with the decision itself (422).
_REFUSAL_STATUS = {
    "unknown_reviewer": 403,
    "wrong_role": 403,
    "own_run": 403,
    "same_approver": 409,
    "stale": 409,
    "already_decided": 409,
    "invalid_edit": 422,
    "edit_beyond_grant": 422,
    "agent_not_installed": 409,  # decidable where the agent is installed
    "system_unavailable": 503,
}

# Errors about input that live outside carebound's core (FHIR, connectors, policy packs).
_INPUT_ERRORS = (
    "FhirInputError",
    "ConnectorError",
    "FhirValidationError",
    "PolicyPackError",
    "InputLimitError",
)


@dataclass(kw_only=True, eq=False)
class Problem(Exception):  # noqa: N818 - an HTTP answer (RFC 9457), raised by handlers
    """An error answer: status, a message saying what and where, and how to fix it."""

    status: int
    detail: str
    code: str | None = None
    hint: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        """The status's standard phrase."""
        return _TITLES.get(self.status, "Error")

    def body(self) -> dict[str, Any]:
        """The problem-details document."""
        body: dict[str, Any] = {"type": "about:blank", "title": self.title}
        body.update(status=self.status, detail=self.detail)
        if self.code:
            body["code"] = self.code
        if self.hint:
            body["hint"] = self.hint
        body.update(self.extra)
        return body


def problem_for(exc: CareboundError) -> Problem:
    """The HTTP answer to a carebound error."""
    status = 400
    extra: dict[str, Any] = {}
    code = exc.code  # the error tree's stable code (a 404 said only "Not Found" before)
    if isinstance(exc, AlreadyDecidedError):
        status = 409
        extra = {"decided_by": exc.decided_by, "decided_at": exc.decided_at}
    elif isinstance(exc, DecisionRefusedError):
        status = _REFUSAL_STATUS.get(exc.code, 403)
    elif isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, RunStateError):
        status = 409
    elif isinstance(exc, StoreUnavailableError | LeaseLostError):
        status = 503
    elif any(cls.__name__ in _INPUT_ERRORS for cls in type(exc).__mro__):
        status = 422
    return Problem(status=status, detail=exc.message, code=code, hint=exc.hint, extra=extra)


def validation_problem(errors: Any) -> Problem:
    """A 422 for a request that does not match the schema (values are not echoed back)."""
    lines = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        lines.append({"loc": loc, "msg": str(err.get("msg", "invalid"))})
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in lines) or "the request is invalid"
    return Problem(
        status=422,
        detail=detail,
        code="invalid_request",
        hint="see the API schema at /openapi.json",
        extra={"errors": lines},
    )


def log_unexpected(exc: BaseException, where: str) -> str:
    """Log a bug without its message (it might hold PHI); returns the error id."""
    error_id = uuid.uuid4().hex[:12]
    frames = traceback.extract_tb(exc.__traceback__)
    trail = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames[-8:])
    )
    log.error("error %s: %s in %s at %s", error_id, type(exc).__name__, where, trail)
    return error_id


class CatchAllMiddleware:
    """Turns a bug into a logged 500 problem, and refuses over-large bodies with 413.

    It sits inside Starlette's error middleware, so an exception never reaches the server's
    own traceback logging (whose message could hold PHI).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = Problem(
            status=413,
            detail=f"the request body is larger than {self.max_body_bytes} bytes",
            hint="send a smaller document",
        )
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_problem(send, too_large)
            return
        wrong_type = _not_json(scope, headers)
        if wrong_type is not None:
            await _send_problem(send, wrong_type)
            return
        started = False
        received = 0

        async def counting_receive() -> Message:
            # A chunked body has no Content-Length: count while it streams, so no handler (and
            # no authentication step) ever buffers more than the limit.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await _send_problem(send, too_large)
        except Exception as exc:
            if _is_store_outage(exc):
                if not started:
                    await _send_problem(send, store_unavailable_problem())
                return
            route = scope.get("route")
            where = f"{scope.get('method')} {getattr(route, 'path', None) or '(no route)'}"
            error_id = log_unexpected(exc, where)
            if not started:
                problem = Problem(
                    status=500,
                    detail=f"the server failed to answer; error id {error_id} (see server log)",
                )
                await _send_problem(send, problem)


class _BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; answered with 413.

    An HTTPException, so FastAPI's body parsing passes it on instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _is_store_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the run store failing to answer."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
        if isinstance(seen, StoreUnavailableError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def store_unavailable_problem() -> Problem:
    """The 503 every request gets while the run store does not answer."""
    return Problem(
        status=503,
        detail="the run store (Redis/Valkey) does not answer",
        code="store_unavailable",
        hint="try again shortly; operators: check the store (carebound server status)",
        headers={"Retry-After": "5"},
    )


def _not_json(scope: Scope, headers: dict[bytes, bytes]) -> Problem | None:
    """415 for an API request whose body says it is not JSON (``curl -d`` sends a form by
    default): otherwise the body would be read as text and refused as "not an object"."""
    if scope.get("method") not in ("POST", "PUT", "PATCH") or not str(
        scope.get("path", "")
    ).startswith("/api/"):
        return None
    declared = headers.get(b"content-type")
    if declared is None or headers.get(b"content-length") == b"0":
        return None
    media = declared.split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    ):
        return None
    return Problem(
        status=415,
        code="unsupported_media_type",
        detail=f"the request body is {media.decode('latin-1')[:60]!r}, not JSON",
        hint="send the body as JSON with 'Content-Type: application/json' "
        "(curl: -H 'Content-Type: application/json')",
    )


async def _send_problem(send: Send, problem: Problem) -> None:
    body = json.dumps(problem.body()).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
