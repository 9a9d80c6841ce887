"""Typed state and signals: a Plan says exactly one of calls, wait or finish; the signals a
parked graph waits on are tagged, read back strictly, and stored in the shape older carebound
versions wrote (plain JSON dicts), so their checkpoints still load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from carebound import FinishSpec, Plan, ProposedCall, RunStateError, WaitSpec
from carebound.engine.run_state import hold_signal, read_signal, wait_signal

CALL = ProposedCall(tool="read_referral")
WAIT = WaitSpec(reason="a reply", until=datetime(2026, 1, 2, tzinfo=UTC), match=["request:1"])
FINISH = FinishSpec(summary="done")


@pytest.mark.parametrize(
    "plan", [Plan(calls=[CALL]), Plan(wait=WAIT), Plan(finish=FINISH, memory={"m": 1})]
)
def test_a_plan_with_exactly_one_move_is_accepted(plan: Plan) -> None:
    assert [bool(plan.calls), plan.wait is not None, plan.finish is not None].count(True) == 1


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({}, "got none of them"),
        ({"calls": []}, "got none of them"),
        ({"findings": {"x": 1}}, "got none of them"),
        ({"calls": [CALL], "finish": FINISH}, "got calls and finish"),
        ({"wait": WAIT, "finish": FINISH}, "got wait and finish"),
        ({"calls": [CALL], "wait": WAIT, "finish": FINISH}, "got calls and wait and finish"),
    ],
)
def test_a_plan_with_two_moves_or_none_is_a_clear_error(
    given: dict[str, object], named: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Plan(**given)  # type: ignore[arg-type]
    message = str(info.value)
    assert "a Plan says exactly one of calls (at least one), wait or finish" in message
    assert named in message and "finish=FinishSpec(...)" in message


def test_signals_keep_the_stored_shape_older_versions_wrote() -> None:
    assert hold_signal("r1-0") == {"type": "hold", "approval_id": "r1-0"}
    stored_wait = WAIT.model_dump(mode="json")
    old = {"type": "wait", **stored_wait}  # what the wait node interrupted with before
    assert wait_signal(stored_wait) == old  # type: ignore[arg-type]
    assert read_signal(old, run_id="r1") == old
    assert read_signal({"type": "hold", "approval_id": "r1-0"}, run_id="r1")["type"] == "hold"


@pytest.mark.parametrize(
    "value",
    [
        {"type": "approve_me", "approval_id": "r1-0"},
        {"type": "hold"},
        {"approval_id": "r1-0"},
        "hold",
        None,
    ],
)
def test_an_unknown_signal_is_a_run_state_error_with_a_hint(value: object) -> None:
    with pytest.raises(RunStateError) as info:
        read_signal(value, run_id="r1")
    assert "run r1 is parked on an interrupt carebound cannot read" in info.value.message
    assert info.value.hint and "carebound cancel" in info.value.hint
