"""Reviewer decisions: who may decide, what an edit may change, two-person holds, escalation,
deadlines that never approve, budgets, waits and timers — through the library API."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from carebound import (
    AlreadyDecidedError,
    Approve,
    DecisionRefusedError,
    Edit,
    Escalate,
    NotFoundError,
    Reject,
    Runner,
    load_policy_pack,
)
from carebound.clock import SystemClock
from carebound.guardrails import AgentPolicy, Budgets, Grant, HoldRule, PolicyPack, ScopeGrant
from carebound.state.pipeline import run
from carebound.tools.connectors.simulated import World

ROLE = "intake_coordinator"


def _paused(runner: Runner, case: Any, world: Any, **kw: Any) -> Any:
    view = runner.start("demo", case, requester=kw.pop("requester", "sam"), world=world, **kw)
    assert view.status == "paused", view.record
    assert view.pending is not None
    return view.pending.request


def _approve(request: Any, reviewer: str = "casey", role: str = ROLE) -> Approve:
    return Approve(reviewer=reviewer, role=role, args_hash=request.args_hash)


def _sent(runner: Runner, run_id: str) -> int:
    return len(World.attach(runner.client, run_id, prefix=runner.prefix).outreach.effects())


def _refused(runner: Runner, approval_id: str, decision: Any, code: str) -> None:
    with pytest.raises(DecisionRefusedError) as info:
        runner.decide(approval_id, decision)
    assert info.value.code == code, info.value


def test_approve_runs_the_effect_once_and_the_run_waits(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    assert request.rule_id == "OUT-2" and request.required_role == ROLE
    assert [c.rule_id for c in request.packet.checks if not c.passed] == ["OUT-2"]
    result = runner.decide(request.approval_id, _approve(request))
    assert result.outcome == "decided"
    assert result.run.status == "waiting"
    assert _sent(runner, request.run_id) == 1
    with pytest.raises(AlreadyDecidedError, match="already decided by casey at"):
        runner.decide(request.approval_id, _approve(request, "jordan"))
    assert _sent(runner, request.run_id) == 1
    assert runner.verify(request.run_id).ok


def test_refusals(make_runner: Any, demo_case: Any, demo_world: Any) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world, requester="casey")
    aid = request.approval_id
    _refused(runner, aid, _approve(request, "casey"), "own_run")
    _refused(runner, aid, _approve(request, "billie", "billing"), "wrong_role")
    _refused(runner, aid, _approve(request, "billie", ROLE), "wrong_role")
    _refused(runner, aid, _approve(request, "jordan", "supervisor"), "wrong_role")
    _refused(runner, aid, _approve(request, "mallory"), "unknown_reviewer")
    stale = Approve(reviewer="jordan", role=ROLE, args_hash="0" * 64)
    _refused(runner, aid, stale, "stale")
    bad_edit = Edit(
        reviewer="jordan",
        role=ROLE,
        args_hash=request.args_hash,
        args={**request.args, "document_code": 11506},
    )
    _refused(runner, aid, bad_edit, "invalid_edit")
    assert _sent(runner, request.run_id) == 0
    assert runner.approval(aid).status == "pending"
    with pytest.raises(NotFoundError):
        runner.decide("rnope-1", _approve(request))


def test_edit_cannot_exceed_the_grant(make_runner: Any, demo_case: Any, demo_world: Any) -> None:
    pack = load_policy_pack("default")
    grant = Grant(
        scopes=[
            ScopeGrant(scope="ehr:*.read"),
            ScopeGrant(scope="outreach:fax.send", recipients=["555-010-2000"]),
        ]
    )
    pack = pack.model_copy(update={"agents": {"demo": AgentPolicy(grant=grant)}})
    runner = make_runner(policy=pack)
    request = _paused(runner, demo_case, demo_world)
    beyond = Edit(
        reviewer="jordan",
        role=ROLE,
        args_hash=request.args_hash,
        args={**request.args, "to": "555-999-0000"},
    )
    _refused(runner, request.approval_id, beyond, "edit_beyond_grant")
    within = Edit(
        reviewer="jordan",
        role=ROLE,
        args_hash=request.args_hash,
        args={**request.args, "note": "Please fax today."},
    )
    result = runner.decide(request.approval_id, within)
    assert result.run.status == "waiting"
    effects = World.attach(runner.client, request.run_id, prefix=runner.prefix).outreach.effects()
    assert len(effects) == 1
    assert result.run.results[-1].args["note"] == "Please fax today."


def _two_person_pack() -> PolicyPack:
    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1",
        text="Two coordinators confirm.",
        decision="hold",
        role=ROLE,
        two_person=True,
        when={"tool": "send_document_request"},
    )  # type: ignore[arg-type]
    return pack.model_copy(update={"rules": [rule]})


def test_two_person_hold_needs_two_distinct_approvers(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner(policy=_two_person_pack())
    request = _paused(runner, demo_case, demo_world)
    first = runner.decide(request.approval_id, _approve(request, "casey"))
    assert first.outcome == "awaiting_second_approver"
    assert first.run.status == "paused"
    _refused(runner, request.approval_id, _approve(request, "casey"), "same_approver")
    assert _sent(runner, request.run_id) == 0
    second = runner.decide(request.approval_id, _approve(request, "jordan"))
    assert second.outcome == "decided" and second.run.status == "waiting"
    assert _sent(runner, request.run_id) == 1


def test_reject_is_fed_back_and_nothing_runs(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    reject = Reject(reviewer="casey", role=ROLE, args_hash=request.args_hash, reason="duplicate")
    view = runner.decide(request.approval_id, reject).run
    assert view.status == "completed"
    assert view.results[-1].status == "rejected" and view.results[-1].reason == "duplicate"
    assert _sent(runner, request.run_id) == 0


def test_escalation_moves_the_hold_to_another_role(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    up = Escalate(reviewer="casey", role=ROLE, args_hash=request.args_hash, to_role="supervisor")
    assert runner.decide(request.approval_id, up).outcome == "escalated"
    assert [v.request.approval_id for v in runner.pending(role="supervisor")] == [
        request.approval_id
    ]
    assert runner.pending(role=ROLE) == []
    _refused(runner, request.approval_id, _approve(request, "casey"), "wrong_role")
    result = runner.decide(request.approval_id, _approve(request, "jordan", "supervisor"))
    assert result.run.status == "waiting"


def test_overdue_holds_escalate_then_expire_never_approve(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    assert runner.pending(overdue=True) == []
    runner.clock.advance(timedelta(days=2, minutes=1))
    assert [v.request.approval_id for v in runner.pending(overdue=True)] == [request.approval_id]
    report = runner.sweep()
    assert report.holds_escalated == 1
    assert runner.approval(request.approval_id).required_role == "supervisor"
    runner.clock.advance(timedelta(days=2, minutes=1))
    assert runner.sweep().holds_expired == 1
    view = runner.get(request.run_id)
    assert view.status == "completed"
    assert view.results[-1].status == "expired"
    assert _sent(runner, request.run_id) == 0


def test_budget_exhausted_ends_the_run(make_runner: Any, demo_case: Any, demo_world: Any) -> None:
    pack = load_policy_pack("default")
    demo = pack.agent_policy("demo").model_copy(update={"budgets": Budgets(tool_calls=1)})
    runner = make_runner(policy=pack.model_copy(update={"agents": {"demo": demo}}))
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "budget_exhausted"
    assert "tool-call budget" in view.record.summary
    assert any(e.action == "budget_stop" for e in runner.audit(view.run_id))


def test_timer_fires_once_even_with_concurrent_sweeps(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    assert runner.decide(request.approval_id, _approve(request)).run.status == "waiting"
    runner.clock.advance(timedelta(days=2, seconds=1))
    others = [make_runner(clock=runner.clock) for _ in range(4)]
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda r=r: reports.append(r.sweep())) for r in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.timers_fired for r in reports) == 1
    view = runner.get(request.run_id)
    assert view.status == "completed"
    assert view.record.summary == "no reply within 2 days; handed to a person"


def test_delivered_event_wakes_the_run_once(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner()
    request = _paused(runner, demo_case, demo_world)
    runner.decide(request.approval_id, _approve(request))
    match = f"request:{request.run_id}:11506-3"
    assert runner.deliver(match, {"document": "progress note"}, event_id="fax-77") == [
        request.run_id
    ]
    assert runner.deliver(match, {"document": "again"}, event_id="fax-77") == []
    view = runner.get(request.run_id)
    assert view.status == "completed"
    assert view.findings["received"] == {"document": "progress note"}


def test_inbox_filters_and_pages(make_runner: Any, demo_case: Any, demo_world: Any) -> None:
    runner = make_runner()
    ids = []
    for _ in range(5):
        ids.append(_paused(runner, demo_case, demo_world).approval_id)
        runner.clock.advance(timedelta(minutes=1))
    first = runner.pending(role=ROLE, limit=2)
    second = runner.pending(role=ROLE, limit=2, offset=2)
    assert [v.request.approval_id for v in first + second] == ids[:4]
    assert runner.pending(role="billing") == []
    assert len(runner.pending(agent="demo", limit=10)) == 5
    assert runner.pending(agent="reconciler") == []


def test_a_decide_attempt_sent_twice_gets_the_same_answer(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """A pipeline re-sent after NOSCRIPT runs the decide step again: the same attempt (its
    decide_id) is answered as before; only another attempt is told someone decided."""
    now = SystemClock().now()
    for pack, first in ((None, "ok"), (_two_person_pack(), "partial")):
        runner: Runner = make_runner(policy=pack) if pack else make_runner()
        request = _paused(runner, demo_case, demo_world)

        def once(attempt: str, runner: Runner = runner, request: Any = request) -> str:
            parse: dict[str, Any] = {}

            def fill(pipe: Any) -> None:
                parse["of"] = runner.approvals.queue_decide(
                    pipe, request.approval_id, _approve(request), now=now, status="approved",
                    decide_id=attempt,
                )  # fmt: skip

            (reply,) = run(runner.client, fill)
            outcome: str = parse["of"](reply).outcome
            return outcome

        assert once("a-1") == first
        assert once("a-1") == first  # the same attempt again
        assert once("a-2") == ("decided" if first == "ok" else "same_approver")
