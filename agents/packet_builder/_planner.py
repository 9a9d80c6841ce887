"""The packet builder's planner: read the documents on file, assess, and propose
``set_referral_status`` (its memory lives under ``memory["packet"]``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from carebound._agent import (
    AgentContext,
    CallResult,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    chase_settings,
    packet_settings,
)
from carebound.tools.referral import (
    PACKET_TOOLS,
    referral_case,
)

from ._assess import Assessment, assess, open_issues_of, payer_check

TOOLS = {t.name: t for t in PACKET_TOOLS}
MEMORY_KEY = "packet"
# --- the planner -----------------------------------------------------------------------------


class PacketMemory(BaseModel):
    """The packet builder's memory (``memory["packet"]``)."""

    last_result: int = -1
    read: Literal["no", "asked", "done"] = "no"
    on_file: list[dict[str, Any]] = Field(default_factory=list)
    proposed: bool = False
    outcome: Literal["", "accepted", "rejected", "declined", "expired", "failed"] = ""
    task: str = ""
    summary: str = ""


def _absorb(mem: PacketMemory, r: CallResult) -> None:
    if r.tool == "list_documents_on_file":
        if mem.read == "asked":
            mem.read = "done"
            if r.status == "executed":
                mem.on_file = list((r.result or {}).get("documents", []))
        return
    if r.tool != "set_referral_status" or not mem.proposed:
        return
    status = str(r.args.get("status"))
    if r.status == "executed":
        mem.outcome = "accepted" if status == "accepted" else "rejected"
        mem.task = str((r.result or {}).get("task", ""))
        mem.summary = f"referral {status} ({mem.task} {status} by the performer)"
    elif r.status == "rejected":
        mem.outcome = "declined"
        mem.summary = (
            f"referral not {status}: the reviewer declined (their reason is in the decision "
            "record); the referral Task "
            "keeps its status for intake staff"
        )
    elif r.status == "expired":
        mem.outcome = "expired"
        mem.summary = "no decision before the hold's deadline; the referral stays open"
    else:
        mem.outcome = "failed"
        mem.summary = f"could not record the decision ({r.status}): {r.reason}"


def packet_findings(assessment: Assessment, status: str) -> dict[str, Any]:
    """The packet builder's findings (``packet`` plus ``missing_documents``)."""
    return {
        "missing_documents": [{"code": m.code, "display": m.display} for m in assessment.missing],
        "packet": {
            "proposed_status": status,
            "recommendation": assessment.recommendation,
            "confidence": assessment.confidence,
            "reason": assessment.reason,
            "checks": [
                {"name": c.name, "passed": c.passed, "rule_id": c.rule_id, "detail": c.detail}
                for c in assessment.checks
            ],
        },
    }


def plan_packet(ctx: AgentContext, view: PlannerView) -> Plan:
    """One turn of the packet builder: read what is on file, assess, propose the decision."""
    mem = PacketMemory.model_validate(view.memory.get(MEMORY_KEY) or {})
    for r in view.results:
        if r.index > mem.last_result:
            if r.tool in TOOLS:
                _absorb(mem, r)
            mem.last_result = r.index

    def done(plan: Plan) -> Plan:
        memory = {**view.memory, MEMORY_KEY: mem.model_dump(mode="json")}
        return plan.model_copy(update={"memory": memory})

    if mem.outcome:
        status: Literal["completed", "failed"] = (
            "failed" if mem.outcome == "failed" else "completed"
        )
        return done(Plan(finish=FinishSpec(status=status, summary=mem.summary)))
    if mem.read == "no":
        mem.read = "asked"
        return done(
            Plan(calls=[ProposedCall(tool="list_documents_on_file", why="see what is on file")])
        )
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        issues = open_issues_of(view.findings)
        assessment = assess(
            case,
            mem.on_file,
            chase_settings(ctx.pack),
            packet_settings(ctx.pack),
            issues,
            payer=payer_check(ctx, case),
        )
    except CareboundError as exc:
        mem.outcome, mem.summary = "failed", f"cannot assess the referral: {exc.message}"
        return done(Plan(finish=FinishSpec(status="failed", summary=mem.summary)))
    findings = {**view.findings, **packet_findings(assessment, assessment.status)}
    mem.proposed = True
    call = ProposedCall(
        tool="set_referral_status",
        args={"status": assessment.status, "reason": assessment.reason, "open_issues": issues},
        why=f"recommendation: {assessment.recommendation} (confidence {assessment.confidence:.2f})",
    )
    return done(Plan(calls=[call], findings=findings))
