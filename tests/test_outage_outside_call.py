"""A system found down outside a tool call parks the run like a call's outage (issue 15).

A planner's read of the EHR, or the gate's facts of a queued call, can find the EHR down. The
run parks in ``waiting`` with the same reason, capped retry timer and hand-off as a tool call's
outage (it used to stay ``running`` until the sweep's recovery drove it again, unseen among the
parked runs), and plans (or gates the queued call) again once the EHR is back. The EHR is the
real FHIR test server, killed and restarted.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from carebound import AgentDefinition, Runner, VirtualClock, load_policy_pack
from carebound._agent import AgentContext, FinishSpec, Plan, PlannerView, ProposedCall, WaitSpec
from carebound.guardrails import AgentPolicy, Grant, ScopeGrant
from carebound.state.breaker import BreakerStore
from carebound.state.parked import parked_runs
from carebound.tools.connectors import Connectors, RunContext
from carebound.tools.connectors.config import EhrConfig
from carebound.tools.connectors.fhir_rest import RestEHR, build_ehr
from carebound.tools.connectors.simulated import World as SimWorld
from carebound.tools.referral import NoArgs, file_document, list_documents_on_file
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirServerProcess

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
Planner = Callable[[AgentContext, PlannerView], Plan]


def _reads_the_chart(ctx: AgentContext, view: PlannerView) -> Plan:
    """Waits an hour, then reads the chart while planning (outside any tool call)."""
    if view.events:
        ctx.read(list_documents_on_file, NoArgs())  # planners read through audited read tools
        return Plan(finish=FinishSpec(summary="read the chart"))
    return Plan(wait=WaitSpec(reason="a timer", until=ctx.now + dt.timedelta(hours=1)))


def _files_a_document(ctx: AgentContext, view: PlannerView) -> Plan:
    """Waits an hour, then proposes filing a document the gate looks up in the EHR."""
    if view.results:
        return Plan(finish=FinishSpec(summary="filed"))
    if view.events:
        call = ProposedCall(tool="file_document", args={"document_id": "doc-not-in-case"},
                            why="file it")  # fmt: skip
        return Plan(calls=[call])
    return Plan(wait=WaitSpec(reason="a timer", until=ctx.now + dt.timedelta(hours=1)))


def _case() -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / "cases" / "chase_no_note.json").read_text()))


@pytest.fixture
def ehr(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess
) -> Iterator[tuple[RestEHR, VirtualClock]]:
    """The EHR over REST on this test's own server (retries and breaker out of the way, so
    the run's waits are the pack's backoff alone), on the run's virtual clock."""
    clock = VirtualClock(MONDAY)
    config = EhrConfig.model_validate({
        "base_url": f"{fhir_process.url}/ehr",
        "retry": {"attempts": 1}, "breaker": {"failure_threshold": 1000},
        "timeouts": {"connect_s": 1, "read_s": 5},
    })  # fmt: skip
    rest = build_ehr(config, breakers=BreakerStore(redis_client, prefix=key_prefix),
                     clock=clock.now)  # fmt: skip
    yield rest, clock
    rest.client.close()


def _runner(
    redis_client: redis.Redis, key_prefix: str, ehr: tuple[RestEHR, VirtualClock], name: str,
    planner: Planner, tools: dict[str, Any], scope: str,
) -> Runner:  # fmt: skip
    rest, clock = ehr
    agent = AgentDefinition(name=name, version="1", description=name, tools=tools,
                            planner=planner, category="referral-documents")  # fmt: skip
    pack = load_policy_pack("default")
    settings = copy.deepcopy(pack.settings)
    settings["outage"] = {"retry_first": "PT1M", "retry_cap": "PT2M", "hand_off_after": 3}
    policy = AgentPolicy(grant=Grant(scopes=[ScopeGrant(scope=scope)]))
    pack = pack.model_copy(update={"settings": settings, "agents": {**pack.agents, name: policy}})

    def connectors(run: RunContext, /) -> Connectors:
        world = SimWorld.reopen(run.client, run.run_id, prefix=run.prefix)
        return Connectors(ehr=rest, payer=world.payer, erp=world.erp, outreach=world.outreach)

    return Runner(redis_client, prefix=key_prefix, clock=clock, policy=pack,
                  agents={name: agent}, connectors=connectors)  # fmt: skip


def _ride_out(runner: Runner, run_id: str, redis_client: redis.Redis, key_prefix: str,
              fhir_process: FhirServerProcess, during: str) -> None:  # fmt: skip
    """Start the run's hour timer with the EHR down; check it parks, backs off, hands off."""
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    view = runner.get(run_id)
    assert view.status == "waiting" and view.record.wait_until is not None
    fhir_process.kill()
    waits = []
    for _ in range(3):
        assert view.record.wait_until is not None
        clock.advance_to(view.record.wait_until)
        runner.sweep()
        view = runner.get(run_id)
        assert view.status == "waiting", view.record.summary
        assert view.record.failures == 0
        waits.append(view.record.wait_until)
        if len(waits) == 1:
            reason = view.record.wait_reason or ""
            assert reason.startswith("waiting for ehr to come back (try 1 of 3 failed"), reason
            [parked] = parked_runs(redis_client, prefix=key_prefix)
            assert parked.system == "ehr" and parked.record.run_id == run_id
    first = MONDAY + dt.timedelta(hours=1)
    assert waits == [first + dt.timedelta(minutes=m) for m in (1, 3, 5)]  # 1, 2, capped at 2
    reason = view.record.wait_reason or ""
    assert reason.startswith("waiting for ehr to come back (try 3 failed"), reason
    assert "the case is with intake_coordinator since try 3" in reason
    trail = [e.detail for e in runner.audit_log.events(run_id) if e.action == "event"]
    outages = [d for d in trail if d.get("kind") == "outage"]
    assert [d["tries"] for d in outages] == [1, 2, 3]
    assert all(d["during"] == during and d["system"] == "ehr" for d in outages)
    [handed] = [d for d in trail if d.get("kind") == "hand_off"]
    assert handed["role"] == "intake_coordinator" and handed["during"] == during
    fhir_process.start()
    clock.advance_to(waits[-1])
    runner.sweep()


def test_a_planners_read_while_the_ehr_is_down_parks_the_run_until_it_is_back(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess,
    ehr: tuple[RestEHR, VirtualClock],
) -> None:  # fmt: skip
    runner = _runner(redis_client, key_prefix, ehr, "chart_reader", _reads_the_chart, {},
                     "ehr:DocumentReference.read")  # fmt: skip
    run_id = runner.start("chart_reader", _case(), requester="sam").run_id
    _ride_out(runner, run_id, redis_client, key_prefix, fhir_process, "plan")
    view = runner.get(run_id)
    assert view.status == "completed" and view.record.summary == "read the chart"
    assert parked_runs(redis_client, prefix=key_prefix) == []


def test_a_gate_fact_read_while_the_ehr_is_down_parks_the_run_and_gates_the_call_once(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess,
    ehr: tuple[RestEHR, VirtualClock],
) -> None:  # fmt: skip
    runner = _runner(redis_client, key_prefix, ehr, "chart_filer", _files_a_document,
                     {"file_document": file_document}, "ehr:DocumentReference.write")  # fmt: skip
    run_id = runner.start("chart_filer", _case(), requester="sam").run_id
    _ride_out(runner, run_id, redis_client, key_prefix, fhir_process, "gate")
    view = runner.get(run_id)
    # Gated once the EHR was back (the document is not on file, as its facts now say: a
    # reviewer looks at it), neither dropped nor gated twice.
    assert view.status == "paused", view.record.summary
    assert view.pending is not None and view.pending.request.tool == "file_document"
    assert [h.request.tool for h in runner.pending(limit=10)] == ["file_document"]
    assert parked_runs(redis_client, prefix=key_prefix) == []
