"""Events that arrive while a run is not waiting are queued for its next wait, not lost."""

from __future__ import annotations

import dataclasses
from typing import Any

from carebound import AgentDefinition, Approve, Runner, RunView
from carebound._agent import (
    AgentContext,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
    WaitSpec,
    request_match,
)
from carebound.agents.demo import DEMO, NOTE_CODE

SEND = "send_document_request"


def _two_faxes(ctx: AgentContext, view: PlannerView) -> Plan:
    """Fax the office (held), wait for a reply; fax again (held), wait for a second reply."""
    read = next((r for r in view.results if r.tool == "read_referral"), None)
    if read is None:
        return Plan(calls=[ProposedCall(tool="read_referral")])
    sends = [r for r in view.results if r.tool == SEND and r.status == "executed"]
    wait = WaitSpec(reason="waiting for the office", match=[request_match(f"{ctx.run_id}:x")])
    if len(sends) < 2 and len(view.events) == len(sends):
        note = f"request {len(sends) + 1}"
        to = read.result["fax_on_file"][0]
        args = {"to": to, "document_code": NOTE_CODE, "note": note}
        return Plan(calls=[ProposedCall(tool=SEND, args=args)])
    if len(view.events) < 2:
        return Plan(wait=wait)
    ids = ", ".join(e.id for e in view.events)
    return Plan(finish=FinishSpec(summary=f"replies: {ids}"))


def _approve(runner: Runner, view: RunView) -> RunView:
    assert view.status == "paused" and view.pending is not None, view.record
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    return runner.decide(request.approval_id, decision).run


def test_a_reply_that_arrives_during_a_hold_reaches_the_next_wait(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    agent: AgentDefinition = dataclasses.replace(DEMO, planner=_two_faxes)
    runner: Runner = make_runner(agents={"demo": agent})
    view = _approve(runner, runner.start("demo", demo_case, requester="sam", world=demo_world))
    assert view.status == "waiting"
    match = request_match(f"{view.run_id}:x")

    assert runner.deliver(match, {"text": "first"}, event_id="fax-1") == [view.run_id]
    paused = runner.get(view.run_id)
    assert paused.status == "paused"  # the second fax is held
    # The office replies again while the run is paused on the hold: queued, not dropped.
    assert runner.deliver(match, {"text": "second"}, event_id="fax-2") == [view.run_id]
    assert runner.get(view.run_id).status == "paused"

    done = _approve(runner, paused)

    assert done.status == "completed"
    assert done.record.summary == "replies: fax-1, fax-2"
    # An ended run is unsubscribed: later events for the key reach nobody.
    assert runner.deliver(match, {"text": "late"}, event_id="fax-3") == []
    assert runner.runs.waiting_for(match) == []
