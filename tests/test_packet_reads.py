"""Decision packets read other systems through audited read tools: every EHR (and payer) read a
packet rests on is checked against the agent's grant and appears in the run's audit trail; a
read the grant does not hold is refused, recorded as denied, and the packet says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from carebound import Runner, VirtualClock, load_policy_pack
from carebound._agent import AgentContext
from carebound.audit import AuditEvent
from carebound.tools.connectors import WorldSpec
from tests.conftest import SCENARIOS

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _bundle(path: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / path).read_text()))


def _reads(runner: Runner, run_id: str) -> list[AuditEvent]:
    return [e for e in runner.audit(run_id) if e.action == "read"]


def test_the_packet_builders_reads_are_in_the_audit_trail(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = _bundle("cases/packet_complete.json")
    view = runner.start(
        "packet_builder", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    assert view.status == "paused" and view.pending is not None
    index = view.pending.request.approval_id.rsplit("-", 1)[1]
    reads = _reads(runner, view.run_id)
    packet_reads = [e for e in reads if e.detail.get("for") == f"packet:{index}"]
    assert {(e.detail["tool"], e.detail["scope"], e.outcome) for e in packet_reads} == {
        ("list_documents_on_file", "ehr:DocumentReference.read", "success"),
        ("reconcile_read_coverage", "payer:Coverage.read", "success"),
    }
    assert all(e.actor.kind == "agent" and e.actor.id == "packet_builder" for e in packet_reads)
    assert all(e.patient_ref == "Patient/pat-delgado" for e in packet_reads)
    # The packet shows what those reads found.
    packet = view.pending.request.packet
    assert any(c.name.lower().startswith("progress note") or "11506-3" in c.detail
               for c in packet.checks), [c.name for c in packet.checks]  # fmt: skip


def test_a_read_beyond_the_grant_is_refused_and_recorded(make_runner: Any) -> None:
    pack = load_policy_pack("default")
    policy = pack.agents["packet_builder"]
    narrowed = policy.grant.model_copy(
        update={"scopes": [s for s in policy.grant.scopes if s.scope != "payer:Coverage.read"]}
    )
    pack = pack.model_copy(
        update={
            "agents": {
                **pack.agents,
                "packet_builder": policy.model_copy(update={"grant": narrowed}),
            }
        }
    )
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = _bundle("cases/packet_complete.json")
    view = runner.start(
        "packet_builder", case, requester="sam", policy=pack,
        world=WorldSpec.from_bundles(case, None),
    )  # fmt: skip
    assert view.status == "paused" and view.pending is not None
    denied = [e for e in _reads(runner, view.run_id) if e.outcome == "denied"]
    # The planner (weighing its recommendation) and the packet both asked; both were refused.
    index = view.pending.request.approval_id.rsplit("-", 1)[1]
    assert sorted((str(e.detail["for"])[:5], e.detail["tool"]) for e in denied) == [
        ("packe", "reconcile_read_coverage"),
        ("plan:", "reconcile_read_coverage"),
    ]
    assert f"packet:{index}" in {e.detail["for"] for e in denied}
    payer = [c for c in view.pending.request.packet.checks if "payer" in c.name.lower()]
    assert payer and "ReadDeniedError" in payer[0].detail, [c.detail for c in payer]


def test_the_reconcilers_packet_reads_its_assessment_through_the_gate(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = _bundle("cases/reconcile_dob_swap.json")
    world = WorldSpec.from_bundles(_bundle("ehr/reconcile_dob_swap.json"), None)
    view = runner.start("reconciler", case, requester="sam", world=world)
    assert view.status == "paused" and view.pending is not None
    index = view.pending.request.approval_id.rsplit("-", 1)[1]
    packet_reads = [
        e for e in _reads(runner, view.run_id) if e.detail.get("for") == f"packet:{index}"
    ]
    assert [(e.detail["tool"], e.outcome) for e in packet_reads] == [
        ("reconcile_review_fix", "success")
    ]
    facts = {f.label: f for f in view.pending.request.packet.facts}
    assert "EHR chart now" in facts  # the chart the read found, shown with its source


def test_agents_cannot_reach_the_connectors_themselves() -> None:
    assert "connectors" not in AgentContext.__dataclass_fields__
    assert "world" not in AgentContext.__dataclass_fields__


@pytest.mark.parametrize("tool", ["reconcile_fix_demographic", "file_document"])
def test_only_read_tools_can_be_read_through(tool: str, make_runner: Any) -> None:
    from carebound.engine.reads import AuditedReader
    from carebound.tools import ToolDefinitionError
    from carebound.tools.reconcile import reconcile_fix_demographic
    from carebound.tools.referral import file_document

    spec = {"reconcile_fix_demographic": reconcile_fix_demographic,
            "file_document": file_document}[tool]  # fmt: skip
    reader = AuditedReader(None, "r-none", "test")  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="is not a read tool"):
        reader(spec, None)  # type: ignore[arg-type]
