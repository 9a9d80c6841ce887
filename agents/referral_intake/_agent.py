"""Referral intake, end to end: chase the documents, reconcile the records, decide, schedule.

It composes three planners, each keeping its own memory key:

1. the chaser (``plan_chase``, ``memory["chase"]``) reads what is on file, files faxes and sends
   the first request to the referring office;
2. while the chaser waits for the office, the reconciler (``plan_reconcile`` from
   ``carebound.agents.reconciler``, ``memory["reconcile"]``) compares the referral with the EHR
   chart and the payer: reconciliation does not wait for missing documents;
3. once the chaser is done, the packet builder (``plan_packet``, ``memory["packet"]``) asks an
   intake coordinator to accept the referral (REF-1), with any high-risk mismatch left open, or
   a reconciliation that did not finish, as a failed check;
4. an accepted referral is routed to scheduling with an EHR Task (SCH-1 refuses the routing of a
   referral whose Task is not accepted).

When the chase ends with items still missing (handed to intake staff), no decision is proposed:
the referral cannot be judged without its documents, and a person already owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
    WaitSpec,
)
from carebound._errors import CareboundError
from carebound.agents._referral import intake_settings
from carebound.agents.packet_builder import plan_packet, referral_packet
from carebound.agents.reconciler import RECONCILER_TOOLS, plan_reconcile, reconcile_packet
from carebound.agents.referral_chaser import chase_packet, plan_chase
from carebound.approvals import DecisionPacket
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue, ToolSpec
from carebound.tools.referral import CHASE_TOOLS, PACKET_TOOLS, route_to_scheduling

MEMORY_KEY = "intake"


def _tools() -> dict[str, ToolSpec[Any]]:
    tools: dict[str, ToolSpec[Any]] = {}
    specs: list[ToolSpec[Any]] = [
        *CHASE_TOOLS,
        *PACKET_TOOLS,
        route_to_scheduling,
        *RECONCILER_TOOLS.values(),
    ]
    for spec in specs:
        if spec.name in tools and tools[spec.name] is not spec:
            raise RuntimeError(f"two intake tools are named {spec.name!r}")
        tools[spec.name] = spec
    return tools


TOOLS = _tools()

# Which findings keys each composed planner owns; a planner's other keys are not taken over.
_OWNED: Mapping[str, frozenset[str]] = {
    "chase": frozenset({"missing_documents", "chase"}),
    "reconcile": frozenset({"mismatches", "reconcile"}),
    "packet": frozenset({"packet"}),
}


class IntakeMemory(BaseModel):
    """Intake's own memory (``memory["intake"]``); the sub-planners keep theirs."""

    last_result: int = -1
    chase: Literal["", "completed", "escalated", "failed"] = ""
    chase_summary: str = ""
    reconcile: Literal["", "completed", "failed"] = ""
    reconcile_summary: str = ""
    decision: str = ""
    decision_summary: str = ""
    routing: Literal["", "proposed", "done", "failed"] = ""
    routing_note: str = ""


SubPlanner = Callable[[AgentContext, PlannerView], Plan]


@dataclass(kw_only=True)
class _Turn:
    """One intake turn: the run so far, and the memory and findings being assembled."""

    ctx: AgentContext
    view: PlannerView
    mem: IntakeMemory
    memory: dict[str, Any]
    findings: dict[str, Any]

    def compose(self, planner: SubPlanner, key: str) -> Plan:
        """Run one sub-planner on the run so far; fold its memory key and findings back."""
        sub = PlannerView(
            results=self.view.results,
            events=self.view.events,
            findings=dict(self.findings),
            memory=dict(self.memory),
            turn=self.view.turn,
        )
        plan = planner(self.ctx, sub)
        if plan.memory is not None and key in plan.memory:
            self.memory[key] = plan.memory[key]
        if plan.findings is not None:
            others: set[str] = set()
            for owner, keys in _OWNED.items():
                if owner != key:
                    others |= keys
            self.findings.update({k: v for k, v in plan.findings.items() if k not in others})
        return plan

    def out(self, **kwargs: Any) -> Plan:
        """The intake plan, with the assembled memory and findings."""
        self.memory[MEMORY_KEY] = self.mem.model_dump(mode="json")
        self.findings[MEMORY_KEY] = _summary(self.mem)
        return Plan(memory=self.memory, findings=self.findings, **kwargs)


def _merge_waits(a: WaitSpec | None, b: WaitSpec) -> WaitSpec:
    if a is None:
        return b
    untils = [u for u in (a.until, b.until) if u is not None]
    return WaitSpec(
        reason=f"{a.reason}; {b.reason}",
        until=min(untils) if untils else None,
        match=list(dict.fromkeys([*a.match, *b.match])),
    )


def _sub_outcome(memory: Mapping[str, Any], key: str) -> str:
    section = memory.get(key) or {}
    return str(section.get("outcome", "")) if isinstance(section, Mapping) else ""


def _gather(turn: _Turn) -> Plan | None:
    """Chase and reconcile side by side: their calls, or their (merged) wait; None when both
    are done."""
    mem = turn.mem
    waiting: WaitSpec | None = None
    if not mem.chase:
        plan = turn.compose(plan_chase, "chase")
        if plan.calls:
            return turn.out(calls=plan.calls)
        if plan.finish is not None:
            outcome = _sub_outcome(turn.memory, "chase")
            failed = plan.finish.status == "failed" or outcome not in ("completed", "escalated")
            mem.chase = (
                "failed" if failed else "escalated" if outcome == "escalated" else "completed"
            )
            mem.chase_summary = plan.finish.summary
        else:
            waiting = plan.wait
    if not mem.reconcile:
        plan = turn.compose(plan_reconcile, "reconcile")
        if plan.calls:
            return turn.out(calls=plan.calls)
        if plan.wait is not None:
            waiting = _merge_waits(waiting, plan.wait)
        else:
            finish = plan.finish or FinishSpec(summary="nothing to reconcile")
            mem.reconcile = "failed" if finish.status == "failed" else "completed"
            mem.reconcile_summary = finish.summary
    return turn.out(wait=waiting) if waiting is not None else None


def _route(turn: _Turn) -> Plan | None:
    """Propose the routing to scheduling of an accepted referral (once)."""
    mem = turn.mem
    if mem.decision != "accepted" or mem.routing:
        return None
    try:
        owner = intake_settings(turn.ctx.pack).scheduling_owner
    except CareboundError as exc:
        mem.routing, mem.routing_note = "failed", exc.message
        return None
    mem.routing = "proposed"
    call = ProposedCall(
        tool=route_to_scheduling.name,
        args={"owner": owner, "note": "accepted by an intake coordinator"},
        why="the referral was accepted: hand it to scheduling",
    )
    return turn.out(calls=[call])


def plan_intake(ctx: AgentContext, view: PlannerView) -> Plan:
    """One turn of referral intake (rules; see the module docstring)."""
    mem = IntakeMemory.model_validate(view.memory.get(MEMORY_KEY) or {})
    for r in view.results:
        if r.index > mem.last_result and r.tool == route_to_scheduling.name:
            if r.status == "executed":
                mem.routing = "done"
                mem.routing_note = f"routed to scheduling ({(r.result or {}).get('task')})"
            else:
                mem.routing = "failed"
                mem.routing_note = f"not routed to scheduling ({r.status}: {r.reason})"
        mem.last_result = max(mem.last_result, r.index)
    turn = _Turn(
        ctx=ctx, view=view, mem=mem, memory=dict(view.memory), findings=dict(view.findings)
    )
    gathered = _gather(turn)
    if gathered is not None:
        return gathered
    if mem.chase != "completed":
        return turn.out(
            finish=FinishSpec(
                status="failed" if mem.chase == "failed" else "completed",
                summary=f"documents: {mem.chase_summary} Records: {mem.reconcile_summary}. "
                "No decision proposed while required items are missing.",
            )
        )
    if not mem.decision:
        turn.findings[MEMORY_KEY] = _summary(mem)
        plan = turn.compose(plan_packet, "packet")
        if plan.calls:
            return turn.out(calls=plan.calls)
        mem.decision = _sub_outcome(turn.memory, "packet") or "failed"
        mem.decision_summary = plan.finish.summary if plan.finish else ""
    routed = _route(turn)
    if routed is not None:
        return routed
    parts = [mem.decision_summary, mem.routing_note, f"documents: {mem.chase_summary}"]
    parts.append(f"records: {mem.reconcile_summary}")
    failed = mem.decision == "failed" or mem.routing == "failed"
    return turn.out(
        finish=FinishSpec(
            status="failed" if failed else "completed",
            summary="; ".join(p for p in parts if p),
        )
    )


def _summary(mem: IntakeMemory) -> dict[str, Any]:
    return {
        "chase": mem.chase or "running",
        "reconcile": mem.reconcile or "running",
        "decision": mem.decision or None,
        "scheduling": mem.routing or None,
        "open_issues": _issues(mem),
    }


def _issues(mem: IntakeMemory) -> list[str]:
    if mem.reconcile == "failed":
        return [f"reconciliation did not finish: {mem.reconcile_summary}"[:300]]
    return []


_RECONCILE_NAMES: Collection[str] = frozenset(RECONCILER_TOOLS)
_CHASE_NAMES: Collection[str] = frozenset(t.name for t in CHASE_TOOLS)


def intake_packet(
    ctx: AgentContext, call: ProposedCall, verdict: PolicyVerdict, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """The packet of a held intake call: each composed agent explains its own holds."""
    if call.tool in _RECONCILE_NAMES:
        return reconcile_packet(ctx, call, verdict, facts)
    if call.tool in _CHASE_NAMES:
        return chase_packet(ctx, call, verdict, facts)
    return referral_packet(ctx, call, verdict, facts)


REFERRAL_INTAKE = AgentDefinition(
    name="referral_intake",
    version="1",
    description="Referral intake end to end: chases missing documents, reconciles the records "
    "meanwhile, asks an intake coordinator to accept the referral with a decision packet, and "
    "routes it to scheduling.",
    tools=TOOLS,
    planner=plan_intake,
    packet=intake_packet,
    category="referral-intake",
)
