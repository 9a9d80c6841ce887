"""The demo agent: read a referral, fax the office on file for a missing progress note (a
guardrail holds the fax for a coordinator), then wait up to two days for the reply.

It is the smallest agent that exercises every part of the runner: a read, a held external
effect, a reviewer decision, a wait for an event or a timer. With a chat model configured it
lets the model propose the calls instead (behind the same gate).
"""

from __future__ import annotations

from datetime import timedelta

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    CallResult,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
    WaitSpec,
    request_match,
)
from carebound._model_planner import model_plan
from carebound.tools.demo import read_referral, send_document_request, update_patient_field

NOTE_CODE = "11506-3"
TOOLS = {t.name: t for t in (read_referral, send_document_request, update_patient_field)}


def _last(view: PlannerView, tool: str) -> CallResult | None:
    return next((r for r in reversed(view.results) if r.tool == tool), None)


def plan(ctx: AgentContext, view: PlannerView) -> Plan:
    """Rules: read, request the note from the office on file, wait for it."""
    if ctx.model is not None:
        return model_plan(
            ctx, view, TOOLS,
            instructions="You chase missing referral documents. Use only the tools given.",
            task=f"Referral run {ctx.run_id}: request the progress note ({NOTE_CODE}).",
        )  # fmt: skip
    read = _last(view, "read_referral")
    if read is None:
        return Plan(calls=[ProposedCall(tool="read_referral", why="see what the case holds")])
    if read.status != "executed":
        return Plan(finish=FinishSpec(status="failed", summary=f"cannot read: {read.reason}"))
    sent = _last(view, "send_document_request")
    if sent is None:
        on_file = list(read.result.get("fax_on_file", []))
        if not on_file:
            return Plan(finish=FinishSpec(status="failed", summary="no fax number on file"))
        call = ProposedCall(
            tool="send_document_request",
            args={"to": on_file[0], "document_code": NOTE_CODE,
                  "note": "Please fax the most recent progress note."},
            why="the referral has no progress note; the referring office is on file",
        )  # fmt: skip
        return Plan(
            calls=[call],
            findings={"missing_documents": [{"code": NOTE_CODE, "display": "Progress note"}]},
        )
    if sent.status != "executed":
        return Plan(finish=FinishSpec(summary=f"request not sent ({sent.status}): {sent.reason}"))
    if not view.events:
        return Plan(
            wait=WaitSpec(
                reason="waiting for the progress note",
                until=ctx.now + timedelta(days=2),
                match=[request_match(f"{ctx.run_id}:{NOTE_CODE}")],
            )
        )
    last = view.events[-1]
    if last.kind == "timer":
        return Plan(finish=FinishSpec(summary="no reply within 2 days; handed to a person"))
    return Plan(
        findings={"missing_documents": [], "received": last.payload},
        finish=FinishSpec(summary="progress note received"),
    )


DEMO = AgentDefinition(
    name="demo",
    version="1",
    description="Requests a missing progress note by fax (held for a coordinator) and waits.",
    tools=TOOLS,
    planner=plan,
    category="referral-documents",
)
