"""Small agents whose connector crashes, stalls or whose planner breaks, for the failure
isolation and lease heartbeat tests (imported by child processes too)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from carebound import AgentDefinition, ToolContext, load_policy_pack, tool
from carebound._agent import AgentContext, FinishSpec, Plan, PlannerView, ProposedCall, WaitSpec
from carebound.agents import registry as shipped_registry
from carebound.guardrails import AgentPolicy, Grant, HoldRule, PolicyPack, RuleMatch, ScopeGrant

PHI_IN_MESSAGE = "Jane Doe 1980-01-02"
"""What a careless connector puts in its exception message: must never be recorded."""

CALLS_FILE_VAR = "CB_TEST_CALLS_FILE"
"""The file the slow connector appends one line to per call (start and end, with the pid)."""
SLOW_S_VAR = "CB_TEST_SLOW_S"
POISON_FILE_VAR = "CB_TEST_POISON_FILE"
"""While this file exists, the poison agent's planner raises."""


class FaxArgs(BaseModel):
    """Where to fax."""

    model_config = ConfigDict(extra="forbid")

    to: str


def _crash(ctx: ToolContext, args: FaxArgs) -> dict[str, Any]:
    """A connector with a bug: raises something no one planned for."""
    raise RuntimeError(f"fax gateway exploded while sending for {PHI_IN_MESSAGE}")


crash_fax = tool(scope="outreach:fax.send", effect="external", key=("to",), name="crash_fax")(
    _crash
)
crash_fax_held = tool(
    scope="outreach:fax.send", effect="external", key=("to",), name="crash_fax_held"
)(_crash)


@tool(scope="outreach:fax.send", effect="external", key=("to",))
def slow_fax(ctx: ToolContext, args: FaxArgs) -> dict[str, Any]:
    """A connector that takes its time (``CB_TEST_SLOW_S`` seconds) and logs each call."""
    calls = Path(os.environ[CALLS_FILE_VAR])
    with calls.open("a", encoding="utf-8") as out:
        out.write(f"start {os.getpid()} {time.time():.3f}\n")
    time.sleep(float(os.environ.get(SLOW_S_VAR, "3")))
    with calls.open("a", encoding="utf-8") as out:
        out.write(f"end {os.getpid()} {time.time():.3f}\n")
    return {"sent_to": args.to}


def _one_call_plan(tool_name: str) -> Any:
    def plan(ctx: AgentContext, view: PlannerView) -> Plan:
        if not view.results:
            return Plan(calls=[ProposedCall(tool=tool_name, args={"to": "555-0100"})])
        last = view.results[-1]
        return Plan(finish=FinishSpec(summary=f"{last.tool}: {last.status}"))

    return plan


def poison_plan(ctx: AgentContext, view: PlannerView) -> Plan:
    """Waits for an event or an hour; raises on waking while the poison file exists."""
    if view.events:
        poison = os.environ.get(POISON_FILE_VAR)
        if poison and Path(poison).exists():
            raise RuntimeError(f"planner bug while reading the chart of {PHI_IN_MESSAGE}")
        return Plan(finish=FinishSpec(summary="woken"))
    return Plan(
        wait=WaitSpec(
            reason="waiting for a reply",
            until=ctx.now + timedelta(hours=1),
            match=[f"poke:{ctx.run_id}"],
        )
    )


def timer_plan(ctx: AgentContext, view: PlannerView) -> Plan:
    """Waits one hour on a timer, then completes."""
    if view.events:
        return Plan(finish=FinishSpec(summary=f"woken by {view.events[-1].kind}"))
    return Plan(wait=WaitSpec(reason="a timer", until=ctx.now + timedelta(hours=1)))


def _agent(name: str, planner: Any, tools: dict[str, Any]) -> AgentDefinition:
    return AgentDefinition(
        name=name,
        version="1",
        description=f"test agent {name}",
        tools=tools,
        planner=planner,
        category="referral-documents",
    )


CRASHY = _agent("crashy", _one_call_plan("crash_fax"), {"crash_fax": crash_fax})
CRASHY_HELD = _agent(
    "crashy_held", _one_call_plan("crash_fax_held"), {"crash_fax_held": crash_fax_held}
)
SLOW_HELD = _agent("slow_held", _one_call_plan("slow_fax"), {"slow_fax": slow_fax})
POISON = _agent("poison", poison_plan, {})
TIMER = _agent("timer", timer_plan, {})
AGENTS = {a.name: a for a in (CRASHY, CRASHY_HELD, SLOW_HELD, POISON, TIMER)}


def isolation_pack() -> PolicyPack:
    """The default pack, granting the test agents the fax scope and holding the
    ``crash_fax_held`` and ``slow_fax`` calls for an intake coordinator."""
    pack = load_policy_pack("default")
    grant = Grant(scopes=[ScopeGrant(scope="outreach:fax.send")])
    hold = HoldRule(
        id="ISO-1",
        text="A test fax is confirmed by a coordinator.",
        when=RuleMatch(tool=["crash_fax_held", "slow_fax"]),
        decision="hold",
        role="intake_coordinator",
    )
    agents = {**pack.agents, **{name: AgentPolicy(grant=grant) for name in AGENTS}}
    return pack.model_copy(update={"agents": agents, "rules": [hold, *pack.rules]})


_SHIPPED = shipped_registry


def registry() -> dict[str, AgentDefinition]:
    """The shipped agents plus the test agents (patched into the CLI's registry)."""
    return {**_SHIPPED(), **AGENTS}
