"""A call allowed by the gate is made in the step that gated it (issue 17: fewer supersteps per
start), and a crash cannot make that step record a call that was made as held or refused.

The step is replayed from its start after a crash: its gate judges the call again, on facts the
call's own effect changed. Here the tool stamps a chart, its fact says whether the chart is
stamped, and the pack holds (or denies) stamping a stamped chart: the first attempt is allowed
and stamps, the process dies before the step is checkpointed, and the replay's policy would
hold (or deny) the call. The gate asks the effect ledger first, so the replay records the call
as made, once, with no approval parked and no denial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from carebound import AgentDefinition, Runner, ToolContext, load_policy_pack, tool
from carebound._agent import AgentContext, FinishSpec, Plan, PlannerView, ProposedCall
from carebound.guardrails import AgentPolicy, Grant, HoldRule, ScopeGrant
from tests.intake_scenario import count_checkpoints_made, intake_case_and_world


class StampArgs(BaseModel):
    """Which stamp to put on the chart."""

    model_config = ConfigDict(extra="forbid")

    stamp: str


class Chart:
    """The world the tool writes to: stamps by idempotency key (a retried key stamps once)."""

    def __init__(self) -> None:
        self.stamps: dict[str, str] = {}
        self.calls = 0
        self.facts_fail_once = False
        """The first facts asked of a stamped chart fail (the drive dies before that gate)."""


def _agent(chart: Chart, planner: Callable[[AgentContext, PlannerView], Plan]) -> AgentDefinition:
    def facts(ctx: ToolContext, args: StampArgs) -> dict[str, Any]:
        if chart.stamps and chart.facts_fail_once:
            chart.facts_fail_once = False
            raise RuntimeError("the drive dies before this gate")
        return {"stamped": bool(chart.stamps)}

    @tool(scope="ehr:Stamp.write", effect="reversible", facts=facts)
    def stamp_chart(ctx: ToolContext, args: StampArgs) -> dict[str, Any]:
        """Stamp the chart."""
        chart.calls += 1
        chart.stamps.setdefault(ctx.idempotency_key, args.stamp)
        return {"stamps": len(chart.stamps)}

    return AgentDefinition(
        name="stamper",
        version="1",
        description="stamps a chart",
        tools={"stamp_chart": stamp_chart},
        planner=planner,
        category="referral-documents",
    )


def _crashing_once() -> Callable[[AgentContext, PlannerView], Plan]:
    """Propose one stamp; once it is made, fail the first time (as a process that dies does:
    the step that made it is not checkpointed, and the run is driven again by recover);
    then finish."""
    crashed = []

    def planner(ctx: AgentContext, view: PlannerView) -> Plan:
        if not view.results:
            return Plan(calls=[ProposedCall(tool="stamp_chart", args={"stamp": "seen"})])
        if not crashed:
            crashed.append(True)
            raise RuntimeError("the drive dies after the effect")
        return Plan(finish=FinishSpec(summary="stamped"))

    return planner


def _runner(make_runner: Any, chart: Chart, decision: str, planner: Any) -> Runner:
    pack = load_policy_pack("default")
    rule = HoldRule.model_validate({
        "id": "STAMP-1", "text": "A stamped chart is not stamped again without a person.",
        "when": {"tool": "stamp_chart", "facts": {"stamped": True}}, "decision": decision,
        **({"role": "intake_coordinator"} if decision == "hold" else {}),
    })  # fmt: skip
    grant = Grant(scopes=[ScopeGrant(scope="ehr:Stamp.write")])
    pack = pack.model_copy(
        update={"agents": {"stamper": AgentPolicy(grant=grant)}, "rules": [rule, *pack.rules]}
    )
    runner: Runner = make_runner(agents={"stamper": _agent(chart, planner)}, policy=pack)
    return runner


@pytest.mark.parametrize("decision", ["hold", "deny"])
def test_a_replayed_step_records_the_call_it_made_not_the_policys_new_verdict(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any, decision: str
) -> None:
    chart = Chart()
    runner = _runner(make_runner, chart, decision, _crashing_once())
    failed = runner.start("stamper", demo_case, requester="sam", world=demo_world)
    assert failed.status == "running" and failed.record.failures == 1
    assert chart.calls == 1 and failed.results == []  # made, but its step never checkpointed
    [run_id] = runner.recover()

    view = runner.get(run_id)
    assert view.status == "completed", view.record.summary
    assert [(r.tool, r.status) for r in view.results] == [("stamp_chart", "executed")]
    assert list(chart.stamps.values()) == ["seen"]
    assert chart.calls == 1  # the replay took the ledger's recorded result
    assert runner.pending() == []
    actions = [e.action for e in runner.audit_log.events(run_id)]
    assert "hold" not in actions and "deny" not in actions
    assert actions.count("effect") == 1


def test_the_same_effect_proposed_again_is_judged_again(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    """The ledger is asked for this call only: the same stamp proposed again later (same key)
    in a replayed step is not taken for the replay of its own effect, so the hold stands."""
    chart = Chart()
    chart.facts_fail_once = True

    def twice(ctx: AgentContext, view: PlannerView) -> Plan:
        if len(view.results) < 2:
            return Plan(calls=[ProposedCall(tool="stamp_chart", args={"stamp": "seen"})])
        return Plan(finish=FinishSpec(summary="stamped twice"))

    runner = _runner(make_runner, chart, "hold", twice)
    failed = runner.start("stamper", demo_case, requester="sam", world=demo_world)
    assert failed.status == "running" and chart.calls == 1
    [run_id] = runner.recover()  # the second gate runs in a step that may be a replay

    view = runner.get(run_id)
    assert view.status == "paused"
    assert view.pending is not None and view.pending.request.rule_id == "STAMP-1"
    assert [(r.tool, r.status) for r in view.results] == [("stamp_chart", "executed")]
    assert chart.calls == 1


def test_a_referral_intake_start_takes_seven_super_steps(make_runner: Any) -> None:
    """Issue 17 (start CPU): each super-step costs LangGraph's loop and a checkpoint. The start
    made 21 (a plan, then a gate step and an execute step per call); it makes one for its input,
    one for the plan and the reads after it, one per effect (with the reads after it) and one
    where it waits. Counted as LangGraph hands them to the saver."""
    case, world = intake_case_and_world()
    runner: Runner = make_runner()
    made = count_checkpoints_made(runner)
    view = runner.start("referral_intake", case, requester="sam", world=world)

    assert view.status == "waiting"
    effects = [e for e in runner.ledger.entries(view.run_id) if e.status == "done"]
    assert [r.status for r in view.results] == ["executed"] * 9
    assert made() == 1 + 1 + len(effects) + 1 == 7
