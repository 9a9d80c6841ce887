"""One gate judges a call wherever it is judged: proposed (the gate node), about to run
(execution's recheck) and edited by a reviewer. A held call whose tool the deciding process's
agent no longer has is refused clearly on every path, never a KeyError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from carebound import Approve, DecisionRefusedError, Edit
from carebound.agents.demo import DEMO

ROLE = "intake_coordinator"
HELD_TOOL = "send_document_request"
WITHOUT_HELD_TOOL = dataclasses.replace(
    DEMO, tools={name: spec for name, spec in DEMO.tools.items() if name != HELD_TOOL}
)


def _held(make_runner: Any, demo_case: Any, demo_world: Any) -> Any:
    view = make_runner().start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    assert view.pending.request.tool == HELD_TOOL
    return view.pending.request


def test_an_edit_of_a_call_whose_tool_is_gone_is_refused_with_a_code(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    request = _held(make_runner, demo_case, demo_world)
    other = make_runner(agents={"demo": WITHOUT_HELD_TOOL})
    edit = Edit(reviewer="casey", role=ROLE, args_hash=request.args_hash, args=request.args)
    with pytest.raises(DecisionRefusedError) as info:
        other.decide(request.approval_id, edit)
    assert info.value.code == "unknown_tool"
    assert f"{HELD_TOOL!r} is not known to agent 'demo'" in info.value.message
    assert other.approval(request.approval_id).status == "pending"  # nothing decided


def test_an_approved_call_whose_tool_is_gone_is_denied_at_execution(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    request = _held(make_runner, demo_case, demo_world)
    other = make_runner(agents={"demo": WITHOUT_HELD_TOOL})
    result = other.decide(
        request.approval_id, Approve(reviewer="casey", role=ROLE, args_hash=request.args_hash)
    )
    held = [r for r in result.run.results if r.tool == HELD_TOOL]
    assert [r.status for r in held] == ["denied"]
    assert held[0].reason == f"unknown tool {HELD_TOOL!r}: the agent has no such tool"
    assert result.run.effects == []  # the fax was never sent
    rechecks = [
        e for e in other.audit(request.run_id)
        if e.action == "permission_check" and e.outcome == "denied"
    ]  # fmt: skip
    assert rechecks and rechecks[-1].detail["reason"].startswith("unknown tool")
