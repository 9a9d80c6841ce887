"""Drives that race with the outside world: something happens to a run while a drive parks it.

A drive settles a run in one round trip that also reads whether the run moved meanwhile (its
hold was decided, or an event was queued, by someone whose own drive could not take the
lease). These tests make that happen at exactly that moment, on the real demo agent.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from carebound import Approve, Runner, RunView
from carebound._agent import RunEvent, request_match
from carebound.agents.demo import NOTE_CODE
from carebound.state.keys import lease_key
from carebound.state.lease import RunLease

ROLE = "intake_coordinator"


def _approve(runner: Runner, view: RunView) -> RunView:
    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer="casey", role=ROLE, args_hash=request.args_hash)
    return runner.decide(request.approval_id, decision).run


def _before_settle(runner: Runner, action: Any) -> list[str]:
    """Run ``action(run_id, stop)`` once, just before the next drive settles a run."""
    settle = runner._driver.settle  # private: this is race instrumentation
    seen: list[str] = []

    def racing(run_id: str, *args: Any, **kwargs: Any) -> Any:
        if not seen:
            seen.append(run_id)
            action(run_id, args[1])
        return settle(run_id, *args, **kwargs)

    setattr(runner._driver, "settle", racing)  # noqa: B010 (test instrumentation)
    return seen


def test_an_event_queued_while_the_run_parks_on_its_wait_is_consumed(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)

    def reply_arrives(run_id: str, stop: Any) -> None:
        assert stop.interrupt["type"] == "wait"
        event = RunEvent(
            id="reply-1",
            kind="event",
            match=request_match(f"{run_id}:{NOTE_CODE}"),
            at=runner.clock.now(),
            payload={"text": "Progress note."},
        )
        assert runner.runs.add_event(run_id, event)

    seen = _before_settle(runner, reply_arrives)
    run = _approve(runner, view)

    assert seen == [view.run_id]
    assert run.status == "completed"
    assert run.record.summary == "progress note received"
    assert runner.runs.peek_event(view.run_id) is None


def test_a_hold_decided_while_the_run_parks_on_it_moves_on(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner: Runner = make_runner()

    def decided_elsewhere(run_id: str, stop: Any) -> None:
        approval = runner.approval(stop.interrupt["approval_id"])
        decision = Approve(reviewer="casey", role=ROLE, args_hash=approval.request.args_hash)
        # What another process's decide stores before its own drive finds the lease taken.
        result = runner.approvals.decide(
            approval.request.approval_id, decision, now=runner.clock.now(), status="approved"
        )
        assert result.outcome == "ok"

    seen = _before_settle(runner, decided_elsewhere)
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)

    assert len(seen) == 1
    assert view.status == "waiting"  # the fax went out; the run waits for the reply
    assert [e.status for e in view.effects] == ["done"]
    actions = [e.action for e in runner.audit(view.run_id)]
    assert actions.count("decision") == 1 and actions.count("effect") == 1


def test_a_waiting_run_ignores_a_resume_meant_for_a_hold(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    """The decide fast path resumes without reading the state first; were the run elsewhere,
    a hold's resume payload must not disturb it."""
    runner: Runner = make_runner()
    view = _approve(runner, runner.start("demo", demo_case, requester="sam", world=demo_world))
    assert view.status == "waiting"
    graph = runner._graph("demo")  # private: drives the graph the way the fast path does
    config = {"configurable": {"thread_id": view.run_id}}

    out = graph.invoke(Command(resume={"approval_id": "elsewhere-1"}), config)

    assert out["__interrupt__"][0].value["type"] == "wait"
    woken = runner.deliver(
        request_match(f"{view.run_id}:{NOTE_CODE}"), {"text": "Progress note."}, event_id="r-1"
    )
    assert woken == [view.run_id]
    assert runner.get(view.run_id).status == "completed"


def test_the_decision_is_audited_once_when_the_chain_moved_meanwhile(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    """The decision's audit event rides in the decide round trip, chained on the head read
    with the approval; if someone appended in between, it is appended again on the new head."""
    runner: Runner = make_runner()
    viewer: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    approval_id = view.pending.request.approval_id
    queue_decide = runner.approvals.queue_decide
    revealed: list[bool] = []

    def reveal_first(*args: Any, **kwargs: Any) -> Any:
        # Another reviewer's audited read lands after this process read the chain head.
        if not revealed:
            viewer.reveal(approval_id, viewer="jordan", role=ROLE)
            revealed.append(True)
        return queue_decide(*args, **kwargs)

    setattr(runner.approvals, "queue_decide", reveal_first)  # noqa: B010 (instrumentation)
    run = _approve(runner, view)

    assert run.status == "waiting"
    assert runner.verify(view.run_id).ok
    actions = [e.action for e in runner.audit(view.run_id)]
    assert actions.count("decision") == 1 and actions.count("effect") == 1
    assert actions.index("view_phi") < actions.index("decision") < actions.index("effect")


def test_a_driver_that_lost_its_lease_writes_no_record(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    """Settling is fenced like checkpoint writes: when another worker took the lease over
    (this one stalled past its TTL), the stale driver's record write is refused."""
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    thief = RunLease(runner.client, prefix=runner.prefix)
    lease_hash = lease_key(runner.prefix, view.run_id)

    def taken_over(run_id: str, stop: Any) -> None:
        runner.client.hset(lease_hash, "expires_ms", 0)  # this driver's lease lapsed ...
        assert thief.acquire(run_id, "other-worker", 30_000) is not None  # ... and was taken

    _before_settle(runner, taken_over)
    # The decision was stored before the lease was lost: the reviewer is told so, with the
    # run as the store has it, never "refused" (the new holder moves the run on).
    run = _approve(runner, view)
    assert run.pending is not None and run.pending.status == "approved"

    assert runner.runs.get(view.run_id).status == "paused"  # as the last holder left it
    assert runner.client.hget(lease_hash, "owner") == b"other-worker"
