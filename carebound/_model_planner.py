"""A planner that asks a langchain-core chat model for the next tool calls.

The model only proposes: its tool calls go through the same gate as a rule planner's, so a
model that is wrong, confused or manipulated by text in a document cannot widen what the agent
may do. Tool results are shown to the model as tool messages, and that is where injected
instructions arrive; the gate, not the model, decides what runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from carebound._agent import AgentContext, FinishSpec, Plan, PlannerView, ProposedCall
from carebound.tools import ToolSpec


def model_plan(
    ctx: AgentContext,
    view: PlannerView,
    tools: Mapping[str, ToolSpec[Any]],
    *,
    instructions: str,
    task: str,
) -> Plan:
    """One planning turn by ``ctx.model``: its tool calls become proposals; none ends the run.
    Call it only when a model is configured (``ctx.model`` is not None)."""
    if ctx.model is None:
        raise ValueError("model_plan needs a chat model: the Runner was given none")
    model = ctx.model.bind_tools([spec.as_langchain_tool() for spec in tools.values()])
    messages: list[BaseMessage] = [SystemMessage(instructions), HumanMessage(task)]
    for result in view.results:
        call_id = f"call-{result.index}"
        messages.append(
            AIMessage(
                content="",
                tool_calls=[{"name": result.tool, "args": result.args, "id": call_id}],
            )
        )
        body = result.result if result.status == "executed" else {"refused": result.reason}
        messages.append(ToolMessage(content=json.dumps(body, default=str), tool_call_id=call_id))
    for event in view.events:
        messages.append(HumanMessage(f"event {event.kind}: {json.dumps(event.payload)}"))
    reply = model.invoke(messages)
    calls = [
        ProposedCall(tool=str(tc["name"]), args=dict(tc["args"]), why="proposed by the model")
        for tc in getattr(reply, "tool_calls", []) or []
    ]
    if not calls:
        return Plan(finish=FinishSpec(summary=str(reply.content)[:500]))
    return Plan(calls=calls)
