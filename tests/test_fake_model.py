"""carebound.testing's fake chat model drives the demo agent through its hold, deterministically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from carebound import Approve, Runner
from carebound.testing import FakeChatModel, finish, tool_calls

FAX = "555-010-2000"  # the referring office's fax in scenarios/cases/hello_referral.json


def _script() -> FakeChatModel:
    return FakeChatModel(
        replies=[
            tool_calls(("read_referral", {})),
            tool_calls(("send_document_request", {"to": FAX, "document_code": "11506-3"})),
            finish("progress note requested"),
        ]
    )


def test_the_documented_example_drives_the_demo_agent_through_a_hold(
    make_runner: Callable[..., Runner], demo_case: Any, demo_world: Any
) -> None:
    model = _script()
    runner = make_runner(model=model)
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    request = view.pending.request
    assert (request.tool, request.args["to"]) == ("send_document_request", FAX)
    assert model.bound_tools == ["read_referral", "send_document_request", "update_patient_field"]

    # decided by a Runner with a fresh model, as another process would: same script, same run
    other = make_runner(model=_script())
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    assert other.decide(request.approval_id, decision).outcome == "decided"
    done = other.get(view.run_id)
    assert done.status == "completed", done.status
    assert done.record.summary == "progress note requested"
    assert [r.status for r in done.results] == ["executed", "executed"]


def test_a_reply_is_chosen_by_the_tool_results_in_the_conversation() -> None:
    model = _script()
    read = AIMessage(content="", tool_calls=[{"name": "read_referral", "args": {}, "id": "1"}])
    result = ToolMessage(content="{}", tool_call_id="1")
    start: list[BaseMessage] = [HumanMessage("go")]
    assert model.invoke(start).tool_calls[0]["name"] == "read_referral"
    assert model.invoke(start).tool_calls[0]["name"] == "read_referral"  # asked again: same
    assert model.invoke([*start, read, result]).tool_calls[0]["args"]["to"] == FAX
    assert len(model.prompts) == 3


def test_past_the_end_of_the_script_is_a_clear_error() -> None:
    model = FakeChatModel(replies=[finish("nothing to do")])
    result = ToolMessage(content="{}", tool_call_id="1")
    with pytest.raises(ValueError, match="no reply after 1 tool result"):
        model.invoke([HumanMessage("go"), result])


def test_a_responder_computes_the_reply() -> None:
    def respond(messages: Sequence[BaseMessage]) -> AIMessage:
        return finish(f"{len(messages)} messages")

    assert FakeChatModel(respond=respond).invoke([HumanMessage("a")]).content == "1 messages"


def test_exactly_one_of_replies_or_respond() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FakeChatModel()
    with pytest.raises(ValueError, match="exactly one"):
        FakeChatModel(replies=[finish("x")], respond=lambda messages: finish("y"))
