"""OpenTelemetry traces: one trace per run, across processes, GenAI names, no PHI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This process's finished spans (the SDK's in-memory exporter), cleared per test."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


# The other process: its own in-memory exporter; it approves the hold (which drives the run
# on) and prints its finished spans as JSON.
_DECIDER = textwrap.dedent(
    """
    import json, sys
    import redis
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from carebound import Approve, Runner

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    url, prefix, approval_id, args_hash = sys.argv[1:5]
    runner = Runner(redis.Redis.from_url(url), prefix=prefix)
    runner.decide(approval_id, Approve(reviewer="casey", role="intake_coordinator",
                                       args_hash=args_hash))
    print(json.dumps([
        {"name": s.name, "trace": format(s.context.trace_id, "032x"),
         "parent": format(s.parent.span_id, "016x") if s.parent else None,
         "attributes": dict(s.attributes or {})}
        for s in exporter.get_finished_spans()
    ]))
    """
)


def _tid(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def test_a_run_paused_here_and_resumed_in_another_process_is_one_trace(
    spans: InMemorySpanExporter,
    make_runner: Any,
    redis_url: str,
    key_prefix: str,
    demo_case: Any,
    demo_world: Any,
) -> None:
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    here = spans.get_finished_spans()
    names = [s.name for s in here]
    assert "start_run demo" in names and "invoke_agent demo" in names
    assert any(n.startswith("execute_tool ") for n in names)
    assert "hold send_document_request" in names
    run_trace = {_tid(s) for s in here}
    assert len(run_trace) == 1

    request = view.pending.request
    out = subprocess.run(
        [sys.executable, "-c", _DECIDER, redis_url, key_prefix, request.approval_id,
         request.args_hash],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert {s["trace"] for s in there} == run_trace  # the same trace, in the other process
    decide = next(s for s in there if s["name"] == "decide approve")
    assert decide["attributes"]["carebound.hold.rule"] == request.rule_id
    assert decide["attributes"]["carebound.hold.role"] == "intake_coordinator"
    assert decide["attributes"]["carebound.decision.outcome"] == "ok"
    drive = next(s for s in there if s["name"] == "invoke_agent demo")
    assert drive["attributes"]["gen_ai.agent.name"] == "demo"
    tool = next(s for s in there if s["name"] == "execute_tool send_document_request")
    assert tool["attributes"]["gen_ai.tool.name"] == "send_document_request"


def test_spans_carry_no_phi(
    spans: InMemorySpanExporter, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    runner.start("demo", demo_case, requester="sam", world=demo_world)
    text = json.dumps(
        [{"name": s.name, "attributes": dict(s.attributes or {})}
         for s in spans.get_finished_spans()]
    )  # fmt: skip
    patients = [e["resource"] for e in demo_case["entry"]
                if e["resource"]["resourceType"] == "Patient"]  # fmt: skip
    assert patients
    for patient in patients:
        assert patient["name"][0]["family"] not in text
        assert patient["birthDate"] not in text
    assert "sam" not in text  # the requester
    allowed = ("gen_ai.", "carebound.", "error.type")
    keys = {k for s in spans.get_finished_spans() for k in (s.attributes or {})}
    assert all(k.startswith(allowed) for k in keys), keys
