"""Resilience for real connectors: per-call timeouts, retries, and a circuit breaker in Redis.

:class:`Resilience` wraps one external system's calls (any HTTP request made with ``httpx``, or
any callable, e.g. an SMTP send):

* a call goes out only if the system's breaker allows it (:mod:`carebound.state.breaker`: its
  state is in Redis, so every process sees the system down at once);
* transient failures (connection errors and timeouts, HTTP 502/503/504, and 429 honouring
  ``Retry-After``) are retried by ``tenacity`` with exponential backoff and jitter, but only for
  a call that is safe to repeat: a read (GET/HEAD), a conditional write (``If-None-Exist`` or
  ``If-Match``) or a PUT/DELETE; any other call fails on its first transient error;
* a call still failing after its retries, or refused by an open breaker, raises
  :class:`SystemUnavailableError` naming the system and when to try again (the engine parks the
  run on it); any other 4xx raises :class:`SystemRefusedError`, a tool error the planner sees.

A REST connector builds one ``Resilience`` per system and sends through it::

    resilience = Resilience("ehr", BreakerStore(redis_client), retry=config.ehr.retry, ...)
    response = resilience.send(http_client, http_client.build_request("GET", url))
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import tenacity

from carebound.logs import event
from carebound.state.breaker import BreakerLimits, BreakerStore
from carebound.tools.connectors._errors import SystemRefusedError, SystemUnavailableError
from carebound.tools.connectors.config import BreakerSettings, RetrySettings, Timeouts

_log = logging.getLogger("carebound.connectors")

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
"""HTTP statuses retried as transient."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_CONDITIONAL_HEADERS = ("if-none-exist", "if-match")
_NETWORK_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def breaker_limits(
    breaker: BreakerSettings, timeouts: Timeouts, retry: RetrySettings
) -> BreakerLimits:
    """The Redis breaker's limits for a system's settings: open for ``reset_timeout_s`` (doubled
    after each failed probe, up to 8 times that), and a probe may take as long as a call with
    all its retries before another process may probe instead."""
    call_s = (timeouts.connect_s + timeouts.read_s) * retry.attempts + retry.cap_s
    return BreakerLimits(
        threshold=breaker.failure_threshold,
        open_ms=int(breaker.reset_timeout_s * 1000),
        max_open_ms=int(breaker.reset_timeout_s * 8000),
        probe_ms=int(call_s * 1000),
    )


class _TransientAnswerError(Exception):
    """A transient HTTP answer (429/502/503/504), raised to make tenacity retry it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def is_idempotent(request: httpx.Request) -> bool:
    """Whether ``request`` is safe to send again: a read, PUT/DELETE, or a conditional write."""
    if request.method.upper() in _SAFE_METHODS:
        return True
    return any(h in request.headers for h in _CONDITIONAL_HEADERS)


def retry_after_s(response: httpx.Response, now: dt.datetime) -> float | None:
    """The response's ``Retry-After`` in seconds (a number or an HTTP date), or None."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


class Resilience:
    """Timeouts, retries and a Redis circuit breaker around one system's calls.

    Args:
        system: the system's name as operators see it (``ehr``, ``payer``, ``office``, ...).
        breakers: the breaker store (Redis).
        timeouts: per-call timeouts.
        retry: retries of transient failures (a ``Retry-After`` longer than ``cap_s`` is not
            slept through: the call fails as unavailable until then, and the run waits).
        breaker: when the breaker opens and for how long.
        clock: the time source (wall clock by default; a scenario's virtual clock).
        sleep: how to wait between tries (``time.sleep``; tests may pass a recorder).
    """

    def __init__(
        self,
        system: str,
        breakers: BreakerStore,
        *,
        timeouts: Timeouts | None = None,
        retry: RetrySettings | None = None,
        breaker: BreakerSettings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetrySettings()
        self._breakers = breakers
        self._limits = breaker_limits(breaker or BreakerSettings(), self.timeouts, self.retry)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=self.retry.backoff_s, max=self.retry.cap_s, jitter=self.retry.jitter_s
        )

    # -- HTTP ----------------------------------------------------------------------------

    def http_timeout(self) -> httpx.Timeout:
        """The per-call ``httpx`` timeout (connect, and each read, write and pool wait)."""
        t = self.timeouts
        return httpx.Timeout(t.read_s, connect=t.connect_s)

    def send(self, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with ``client``: retried when transient and safe to repeat.

        Returns the response of a 2xx/3xx answer, and of a 404/410 (the caller decides what
        "not found" means).

        Raises:
            SystemUnavailableError: the breaker is open, or the call still failed transiently
                after its retries (or at once, when it is not safe to repeat).
            SystemRefusedError: any other 4xx or 5xx answer.
        """
        request.extensions["timeout"] = self.http_timeout().as_dict()

        def attempt() -> httpx.Response:
            response = client.send(request)
            if response.status_code in TRANSIENT_STATUS:
                response.read()
                raise _TransientAnswerError(response)
            return response

        response = self.call(attempt, retryable=is_idempotent(request), what=request.method)
        if response.status_code >= 400 and response.status_code not in (404, 410):
            raise SystemRefusedError(
                f"{self.system} refused {request.method} {request.url.path}: HTTP "
                f"{response.status_code}{outcome_code(response)}",
                system=self.system,
                status=response.status_code,
                hint="the request itself was refused (not retried); check its data, the "
                "resource's version, or the client's permissions on that system",
            )
        return response

    # -- any call ------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable: bool,
        what: str = "call",
        transient: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Call ``fn`` through the breaker, retrying transient failures when ``retryable``.

        Transient failures are ``httpx`` network errors and timeouts, transient HTTP answers,
        and the exception classes in ``transient`` (e.g. an SMTP connection error).

        Raises:
            SystemUnavailableError: as :meth:`send`. Anything else ``fn`` raises propagates
                unchanged (the system answered, so it counts as up for the breaker).
        """
        verdict = self._breakers.allow(self.system, self._now_ms(), self._limits)
        if not verdict.allowed:
            raise self._unavailable(
                f"its circuit breaker is {verdict.state.replace('_', '-')}",
                retry_at_ms=verdict.retry_at_ms,
            )
        kinds: tuple[type[BaseException], ...] = (
            *_NETWORK_ERRORS,
            _TransientAnswerError,
            *transient,
        )
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts if retryable else 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(kinds),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            result = retrying(fn)
        except kinds as exc:
            state, open_until = self._breakers.record(
                self.system, False, self._now_ms(), self._limits
            )
            event(_log, "connector.failure", logging.WARNING, system=self.system,
                  error=_describe(exc), breaker=state)  # fmt: skip
            if state == "open":
                event(_log, "breaker.open", logging.WARNING, system=self.system,
                      open_until_ms=open_until)  # fmt: skip
            retry_at_ms = open_until if state == "open" else 0
            if isinstance(exc, _TransientAnswerError) and exc.response.status_code == 429:
                wait = retry_after_s(exc.response, self._clock())
                if wait is not None:
                    retry_at_ms = max(retry_at_ms, self._now_ms() + int(wait * 1000))
            tries = self.retry.attempts if retryable else 1
            raise self._unavailable(
                f"{what} failed with {_describe(exc)} after {tries} tr"
                + ("y" if tries == 1 else "ies"),
                retry_at_ms=retry_at_ms,
            ) from None
        except BaseException:
            self._breakers.record(self.system, True, self._now_ms(), self._limits)
            raise
        self._breakers.record(self.system, True, self._now_ms(), self._limits)
        return result

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = self._backoff(state)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _TransientAnswerError) and exc.response.status_code == 429:
            asked = retry_after_s(exc.response, self._clock())
            if asked is not None:
                if asked > self.retry.cap_s:
                    raise exc  # not worth holding a worker: give up now, park until then
                return max(backoff, asked)
        return float(backoff)

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def _unavailable(self, why: str, *, retry_at_ms: int) -> SystemUnavailableError:
        retry_at = (
            dt.datetime.fromtimestamp(retry_at_ms / 1000, dt.UTC) if retry_at_ms > 0 else None
        )
        return SystemUnavailableError(
            f"{self.system} is unavailable: {why}",
            system=self.system,
            retry_at=retry_at,
            hint="nothing to fix in the call: it is tried again later (the run waits)",
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _TransientAnswerError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def outcome_code(response: httpx.Response) -> str:
    """The OperationOutcome's first issue code, if the body is one (never its diagnostics text,
    which may quote patient data)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    issues = body.get("issue") or []
    code = issues[0].get("code") if issues and isinstance(issues[0], dict) else None
    return f" ({code})" if isinstance(code, str) else ""
