"""OpenTelemetry traces of runs: one trace per run, however many processes move it.

A run's trace starts when it starts (inside the caller's current span, if any, so a service's
request and the run it started are one trace) and its context (W3C ``traceparent``) is kept in
the run's record. Every later drive, in this process or another one days later, opens its
``invoke_agent`` span as a child of that context, so the trace joins up across the pause. Tool
calls are ``execute_tool`` spans, holds and decisions spans with ``carebound.*`` attributes.

Span names and attributes follow the OpenTelemetry GenAI semantic conventions where they apply
(``gen_ai.operation.name``, ``gen_ai.agent.name``, ``gen_ai.tool.name``). No PHI: attributes
are agent, tool, rule and role names, run and approval ids, outcomes and durations; never
arguments, results, reasons or notes.

Only ``opentelemetry-api`` is needed here: without an SDK configured (``carebound[otel]`` and
the usual ``OTEL_*`` settings, or a ``TracerProvider`` a service sets up) every span is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACER_NAME = "carebound"
_PROPAGATOR = TraceContextTextMapPropagator()


def _tracer() -> trace.Tracer:
    # Looked up on each use, so a provider a service installs later is picked up.
    return trace.get_tracer(_TRACER_NAME)


def _off() -> bool:
    """No tracer provider is installed (checked on each use, like ``_tracer``): every span
    would be the API's no-op, which starts no span and keeps the current one current. The
    spans of a decide's path skip that work (a few dozen calls per span) when tracing is off."""
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def start_trace(run_id: str, agent: str) -> str | None:
    """Open and close the run's first span (``create_agent``-like start); returns the trace
    context to keep with the run (None when tracing is off)."""
    with _tracer().start_as_current_span(
        f"start_run {agent}",
        kind=trace.SpanKind.INTERNAL,
        attributes={"gen_ai.agent.name": agent, "carebound.run.id": run_id},
    ) as span:
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get("traceparent")


def _parent(traceparent: str | None) -> Any:
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


@contextmanager
def drive_span(run_id: str, agent: str, traceparent: str | None) -> Iterator[Span]:
    """The span of one drive of a run, a child of the run's trace."""
    if not traceparent and _off():
        yield trace.get_current_span()  # what the no-op tracer would start
        return
    with _tracer().start_as_current_span(
        f"invoke_agent {agent}",
        context=_parent(traceparent),
        kind=trace.SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "carebound.run.id": run_id,
        },
    ) as span:
        yield span


def drive_stopped(span: Span, status: str, *, effects: int | None = None) -> None:
    """Record where the drive left the run."""
    span.set_attribute("carebound.run.status", status)
    if effects is not None:
        span.set_attribute("carebound.run.effects", effects)
    if status in ("failed", "quarantined"):
        span.set_status(StatusCode.ERROR, f"run {status}")


@contextmanager
def tool_span(tool: str, effect: str) -> Iterator[Span]:
    """The span of one tool call (inside the current drive's span)."""
    if _off():
        yield trace.get_current_span()
        return
    with _tracer().start_as_current_span(
        f"execute_tool {tool}",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "carebound.tool.effect": effect,
        },
    ) as span:
        yield span


def tool_failed(span: Span, error_class: str | None) -> None:
    """Mark a tool call that ended in an error (by class only: messages may carry PHI)."""
    if error_class:
        span.set_status(StatusCode.ERROR, error_class)
        span.set_attribute("error.type", error_class)


def hold_made(*, approval_id: str, tool: str, rule: str, role: str) -> None:
    """A span for the gate holding a call (inside the current drive's span)."""
    if _off():
        return
    with _tracer().start_as_current_span(
        f"hold {tool}",
        attributes={
            "gen_ai.tool.name": tool,
            "carebound.hold.approval_id": approval_id,
            "carebound.hold.rule": rule,
            "carebound.hold.role": role,
        },
    ):
        pass


def decision_made(
    traceparent: str | None,
    *,
    approval_id: str,
    rule: str | None,
    role: str,
    decision: str,
    outcome: str,
    wait_s: float,
) -> None:
    """A span for a reviewer's decision on a hold, in the run's trace."""
    if _off():
        return
    with _tracer().start_as_current_span(
        f"decide {decision}",
        context=_parent(traceparent),
        attributes={
            "carebound.hold.approval_id": approval_id,
            "carebound.hold.rule": rule or "",
            "carebound.hold.role": role,
            "carebound.decision": decision,
            "carebound.decision.outcome": outcome,
            "carebound.hold.wait_s": round(wait_s, 3),
        },
    ):
        pass


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (None when tracing is off)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
