"""The referral chaser's planner: find what a referral still needs, and get it from the office.

Rules, in order, each turn (``plan_chase``; its memory lives under ``memory["chase"]`` so the
intake agent can compose it):

1. Read what is on file: the patient's documents in the EHR and the referring office's contacts.
2. File every untyped document (faxes: classified from their text) and every received one. The
   ``file_document`` tool's own facts decide whether the text supports the type: a low-confidence
   classification, or text with instructions addressed to software, is held for a person.
3. Work out what is missing (the pack's ``settings.referral_chaser.requirements``: documents by
   LOINC type and date, coverage, prior authorisation).
4. Nothing missing: close the request (if one was open) and finish.
5. Missing: open one CDex-style request Task to the referring office and send attempts on the
   pack's schedule (``outreach.attempts`` over ``outreach.window_business_days`` business days)
   to the best contact: on file before not on file (a contact not on file is held by OUT-1),
   then by channel preference. Replies are matched to the request by its Task id.
6. No answer by the end of the window (or outreach refused, or no contact at all): withdraw the
   request and hand the case to intake staff with an EHR Task, then finish. The run ends rather
   than holds: the EHR work queue is where intake staff pick up chases, and a hand-over needs no
   decision from a reviewer, only work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carebound._agent import (
    AgentContext,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
    WaitSpec,
    request_match,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    ChaseSettings,
    chase_settings,
    handover_time,
    plan_fax_referral,
    proposed_code,
    second_opinion,
)
from carebound.domain.documents import (
    UNKNOWN,
    Classification,
    MissingItem,
)
from carebound.fhir import ReferralCase
from carebound.tools.referral import (
    pick_contact,
    readable_text,
    referral_case,
    service_request_ref,
)

from ._draft import draft_note
from ._memory import (
    MEMORY_KEY,
    ChaseMemory,
    ChaseRequest,
    DocState,
    absorb,
    missing_items,
    missing_now,
    seed_case_docs,
)

# --- deciding the next step ------------------------------------------------------------------


def _call(tool: str, why: str, **args: Any) -> ProposedCall:
    return ProposedCall(tool=tool, args=args, why=why)


def _document_text(ctx: AgentContext, doc: DocState) -> str | None:
    """The readable text of a document the chaser will file (None: none, or unreadable)."""
    resource = doc.resource or next(
        (
            dict(entry.get("resource") or {})
            for entry in ctx.case.get("entry", []) or []
            if (entry.get("resource") or {}).get("resourceType") == "DocumentReference"
            and (entry.get("resource") or {}).get("id") == doc.id
        ),
        {},
    )
    try:
        return readable_text(resource, source=f"DocumentReference/{doc.id}") if resource else None
    except CareboundError:
        return None


def _consult_model(ctx: AgentContext, doc: DocState) -> None:
    """Ask the classify model once per untyped document (task 1 of carebound.assist); its
    reading rides along with the filing as ``second_opinion``."""
    if doc.asked or doc.typed or ctx.models is None or ctx.models.model_for("classify") is None:
        return
    doc.asked = True
    text = _document_text(ctx, doc)
    if text is None:
        return
    rules = Classification(
        code=doc.guess or UNKNOWN, display=doc.guess or UNKNOWN, confidence=doc.confidence
    )
    doc.opinion = second_opinion(ctx, text, rules)


def _filing_args(doc: DocState) -> tuple[dict[str, Any], str]:
    """The ``file_document`` arguments for ``doc``, and why."""
    if doc.typed:
        typed = doc.typed[0]
        return {"document_id": doc.id, "code": typed}, f"received document typed {typed}"
    rules = Classification(
        code=doc.guess or UNKNOWN, display=doc.guess or UNKNOWN, confidence=doc.confidence
    )
    opinion = doc.opinion
    code = proposed_code(rules, opinion.code if opinion else None)
    why = (
        f"untyped document reads as {doc.guess or 'nothing known'} "
        f"(confidence {doc.confidence:.2f})"
    )
    args: dict[str, Any] = {"document_id": doc.id, "code": code}
    if opinion is not None:
        args["second_opinion"] = opinion.model_dump(mode="json", exclude_none=True)
        why += f"; a model reads it as {opinion.code} (confidence {opinion.confidence:.2f})"
    return args, why


def _filing_calls(ctx: AgentContext, mem: ChaseMemory) -> list[ProposedCall]:
    calls = []
    for reply in mem.replies:
        if reply.recorded == "todo" and mem.request is not None:
            reply.recorded = "proposed"
            calls.append(
                _call(
                    "record_reply",
                    f"the referring office replied ({reply.channel}) to {mem.request.task_id}",
                    task_id=mem.request.task_id,
                    inbound_id=reply.inbound_id,
                    channel=reply.channel,
                    sender=reply.sender,
                    received_at=reply.received_at.isoformat(),
                    documents=[d.resource for d in mem.docs if d.id in reply.documents],
                )
            )
    for doc in mem.docs:
        if doc.filing != "todo":
            continue
        _consult_model(ctx, doc)
        doc.filing = "proposed"
        args, why = _filing_args(doc)
        if doc.injection:
            why += "; its text addresses software, which is ignored"
        calls.append(ProposedCall(tool="file_document", args=args, why=why))
    return calls


def _escalate(
    mem: ChaseMemory, case: ReferralCase, settings: ChaseSettings, missing: list[dict[str, str]]
) -> list[ProposedCall]:
    calls = []
    request = mem.request
    if request is not None and request.opened and not request.closed and not request.closing:
        request.closing = "cancelled"
        calls.append(
            _call(
                "close_document_request",
                "the request goes to people; the agent withdraws it",
                task_id=request.task_id,
                outcome="cancelled",
                reason=f"Withdrawn by the agent and handed to staff: {mem.escalate_reason}"[:900],
            )
        )
    mem.escalation = "proposed"
    focus = f"Task/{request.task_id}" if request and request.opened else service_request_ref(case)
    calls.append(
        _call(
            "escalate_to_staff",
            mem.escalate_reason,
            focus=focus,
            reason=mem.escalate_reason,
            items=missing,
            owner=settings.escalate_to,
        )
    )
    return calls


def _finish(mem: ChaseMemory) -> FinishSpec:
    return FinishSpec(
        status="failed" if mem.outcome == "failed" else "completed", summary=mem.summary
    )


def _next(
    ctx: AgentContext, mem: ChaseMemory, case: ReferralCase, settings: ChaseSettings
) -> tuple[list[ProposedCall], WaitSpec | None]:
    """The calls to propose now, or the wait; neither means finished (see ``mem.outcome``)."""
    if mem.read == "no":
        mem.read = "asked"
        return [
            _call("list_documents_on_file", "see which documents the EHR already holds"),
            _call("list_contacts_on_file", "find how the referring office can be reached"),
        ], None
    mem.read = "done"
    calls = _filing_calls(ctx, mem)
    if calls:
        return calls, None
    missing = missing_items(missing_now(case, mem, settings))
    if mem.escalation == "done":
        names = ", ".join(f"{m['display']} ({m['code']})" for m in missing) or "nothing"
        mem.outcome = "escalated"
        mem.summary = (
            f"escalated to intake staff ({mem.escalation_task}): {mem.escalate_reason} "
            f"Still missing: {names}."
        )
        return [], None
    if not missing:
        return _complete(mem), None
    if mem.escalate_reason:
        return _escalate(mem, case, settings, missing), None
    return _outreach(ctx, mem, case, settings, missing)


def _complete(mem: ChaseMemory) -> list[ProposedCall]:
    """Nothing is missing: close the open request first, then finish."""
    request = mem.request
    if request is not None and request.opened and not request.closed and not request.closing:
        answered = bool(mem.replies)
        request.closing = "completed" if answered else "cancelled"
        reason = (
            "Fulfilled by reply " + ", ".join(r.inbound_id for r in mem.replies)
            if answered
            else "No longer needed: the documents are on file."
        )
        return [
            _call(
                "close_document_request",
                "every requested item is on file now",
                task_id=request.task_id,
                outcome=request.closing,
                reason=reason,
            )
        ]
    mem.outcome = "completed"
    if request is None:
        mem.summary = "all required documents present; nothing to request"
    else:
        mem.summary = (
            f"all required documents received after {request.attempts} request "
            f"attempt(s) (Task/{request.task_id} {request.closing or 'closed'})"
        )
    return []


def _outreach(
    ctx: AgentContext,
    mem: ChaseMemory,
    case: ReferralCase,
    settings: ChaseSettings,
    missing: list[dict[str, str]],
) -> tuple[list[ProposedCall], WaitSpec | None]:
    """Something is missing: open the request, send the attempt that is due, or wait."""
    request = mem.request
    if request is None:
        contact = pick_contact(mem.contacts, settings.outreach.channels)
        if contact is None:
            mem.escalate_reason = (
                "No contact for the referring office is on file or in the referral."
            )
            return _escalate(mem, case, settings, missing), None
        mem.request = ChaseRequest(
            task_id=f"docreq-{ctx.run_id}"[:64],
            channel=contact.channel,
            to=contact.value,
            on_file=contact.on_file,
        )
        return [
            _call(
                "open_document_request",
                "record the request to the referring office before sending it",
                task_id=mem.request.task_id,
                items=missing,
                due=handover_time(ctx.now, settings.outreach).isoformat(),
            )
        ], None
    if not request.opened:
        mem.escalate_reason = "The document request was not opened."
        return _escalate(mem, case, settings, missing), None
    due = request.due
    if request.attempts and due is not None and ctx.now < due:
        return [], WaitSpec(
            reason=f"waiting for the referring office to answer {request.task_id} "
            f"(attempt {request.attempts} of {settings.outreach.attempts})",
            until=due,
            match=[request_match(request.task_id)],
        )
    if request.attempts >= settings.outreach.attempts:
        mem.escalate_reason = (
            f"No complete reply after {request.attempts} attempt(s) over "
            f"{settings.outreach.window_business_days} business days."
        )
        return _escalate(mem, case, settings, missing), None
    n = request.attempts + 1
    where = "on file" if request.on_file else "NOT on file (from the referral)"
    note, drafted_by = draft_note(ctx, case, missing, request.channel)
    drafted = {"note": note, "drafted_by": drafted_by} if note else {}
    return [
        _call(
            "send_request_attempt",
            f"attempt {n} of {settings.outreach.attempts}: ask the referring office "
            f"({request.channel} {where}) for what is missing"
            + (f"; the free text was drafted by {drafted_by}" if note else ""),
            task_id=request.task_id,
            attempt=n,
            channel=request.channel,
            to=request.to,
            items=missing,
            **drafted,
        )
    ], None


def chase_findings(mem: ChaseMemory, missing: Sequence[tuple[MissingItem, str]]) -> dict[str, Any]:
    """The chaser's findings: ``missing_documents`` (run report contract) and ``chase``."""
    request = mem.request
    return {
        "missing_documents": missing_items(missing),
        "chase": {
            "missing": [
                {
                    "code": m.code,
                    "display": m.display,
                    "problem": m.problem,
                    "reason": m.reason,
                    "requirement": rid,
                }
                for m, rid in missing
            ],
            "request": f"Task/{request.task_id}" if request else None,
            "channel": request.channel if request else None,
            "attempts": request.attempts if request else 0,
            "documents": [
                {"id": d.id, "origin": d.origin, "filing": d.filing, "code": d.code or d.guess}
                for d in mem.docs
            ],
            "replies": [r.inbound_id for r in mem.replies],
            "escalation": mem.escalation_task or None,
            "outcome": mem.outcome or "open",
            "notes": mem.notes[-20:],
        },
    }


def plan_chase(ctx: AgentContext, view: PlannerView) -> Plan:
    """One turn of the chaser: rules, deterministic for a given run history; a model configured
    for the ``draft`` task writes only the free text of a document request (``_draft``)."""
    mem = ChaseMemory.model_validate(view.memory.get(MEMORY_KEY) or {})
    try:
        settings = chase_settings(ctx.pack)
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
    except CareboundError as exc:
        drafted = plan_fax_referral(ctx, view, key=MEMORY_KEY)  # a referral that came as a fax
        if drafted is not None:
            return drafted
        return Plan(finish=FinishSpec(status="failed", summary=f"cannot chase: {exc.message}"))
    if not mem.outcome:
        seed_case_docs(mem, case)
        absorb(mem, view, settings)
    calls: list[ProposedCall] = []
    wait = None
    if not mem.outcome:
        try:
            calls, wait = _next(ctx, mem, case, settings)
        except CareboundError as exc:
            mem.outcome, mem.summary = "failed", f"cannot chase: {exc.message}"
    try:
        missing = missing_now(case, mem, settings)
    except CareboundError:
        missing = []
    memory = {**view.memory, MEMORY_KEY: mem.model_dump(mode="json")}
    findings = {**view.findings, **chase_findings(mem, missing)}
    if calls:
        return Plan(calls=calls, memory=memory, findings=findings)
    if wait is not None:
        return Plan(wait=wait, memory=memory, findings=findings)
    return Plan(finish=_finish(mem), memory=memory, findings=findings)
