"""The referral chaser: find what a referral still needs, and get it from the referring office.

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

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from carebound._errors import CareboundError
from carebound.agents._referral import (
    ChaseSettings,
    attempt_times,
    chase_settings,
    handover_time,
    rule_for_fact,
)
from carebound.agents.packet_builder import evidence_case
from carebound.approvals import DecisionPacket, PacketCheck, PacketFact, SourceRef
from carebound.domain.documents import (
    UNKNOWN,
    Classification,
    InjectionReport,
    MissingItem,
    detect_injection,
    document_texts,
    missing_documents,
)
from carebound.fhir import ReferralCase
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue
from carebound.tools.connectors import Channel, InboundDocument
from carebound.tools.referral import (
    CHASE_TOOLS,
    Contact,
    classify_resource,
    parse_document,
    patient_ref,
    pick_contact,
    referral_case,
    service_request_ref,
    typed_codes,
)

from ._document_facts import document_facts

TOOLS = {t.name: t for t in CHASE_TOOLS}
MEMORY_KEY = "chase"


Origin = Literal["case", "ehr", "reply"]
"""Where a document came from: the referral, the EHR, or a reply to outreach."""


class DocState(BaseModel):
    """A document the chaser knows of, and where its filing stands."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """The DocumentReference id (or, for an id-less case document, its Bundle key)."""
    origin: Origin
    resource: dict[str, Any] = Field(default_factory=dict)
    """The DocumentReference JSON (EHR and reply documents; case ones are read from the case)."""
    typed: list[str] = Field(default_factory=list)
    """Its LOINC types as it came."""
    guess: str | None = None
    """For an untyped document: the classifier's code (None: unknown)."""
    confidence: float = 0.0
    injection: bool = False
    """The text addresses software (instructions were found and ignored)."""
    filing: Literal["none", "todo", "proposed", "filed", "declined"] = "none"
    code: str | None = None
    """The type it counts as once filed (as proposed, or as a reviewer edited it)."""
    request_id: str | None = None


class Reply(BaseModel):
    """A reply received for the open request."""

    inbound_id: str
    channel: Channel
    sender: str
    received_at: datetime
    documents: list[str]
    recorded: Literal["todo", "proposed", "done"] = "todo"


class ChaseRequest(BaseModel):
    """The one document request of a run."""

    task_id: str
    channel: Channel
    to: str
    on_file: bool
    opened: bool = False
    attempts: int = 0
    first_sent: datetime | None = None
    due: datetime | None = None
    """When the next attempt (or the hand-over) is due."""
    closing: Literal["", "completed", "cancelled"] = ""
    closed: bool = False


class ChaseMemory(BaseModel):
    """The chaser's memory (``memory["chase"]``), JSON in the checkpoint."""

    last_result: int = -1
    events_seen: int = 0
    read: Literal["no", "asked", "done"] = "no"
    contacts: list[Contact] = Field(default_factory=list)
    docs: list[DocState] = Field(default_factory=list)
    request: ChaseRequest | None = None
    replies: list[Reply] = Field(default_factory=list)
    escalate_reason: str = ""
    escalation: Literal["", "proposed", "done"] = ""
    escalation_task: str = ""
    outcome: Literal["", "completed", "escalated", "failed"] = ""
    summary: str = ""
    notes: list[str] = Field(default_factory=list)


# --- what is missing -------------------------------------------------------------------------


def _evidence(
    case: ReferralCase, mem: ChaseMemory
) -> tuple[ReferralCase, dict[str, Classification]]:
    """The case with every document on file or received, and the classifications to use."""
    classified: dict[str, Classification] = {}
    extra = []
    for doc in mem.docs:
        if doc.filing == "declined":
            continue
        if doc.filing == "filed" and doc.code and not doc.typed:
            classified[doc.id] = Classification(code=doc.code, display=doc.code, confidence=1.0)
        elif not doc.typed and doc.guess:
            classified[doc.id] = Classification(
                code=doc.guess, display=doc.guess, confidence=doc.confidence
            )
        if doc.origin != "case":
            extra.append(parse_document(doc.resource, source=f"DocumentReference/{doc.id}"))
    declined = {d.id for d in mem.docs if d.filing == "declined"}
    kept = tuple(d for d in case.documents if case.document_key(d) not in declined)
    return dataclasses.replace(case, documents=kept + tuple(extra)), classified


def missing_now(
    case: ReferralCase, mem: ChaseMemory, settings: ChaseSettings
) -> list[tuple[MissingItem, str]]:
    """What the referral still misses, with the id of the requirement each item fails."""
    evidence, classified = _evidence(case, mem)
    by_code = {r.code: r.id for r in settings.requirements}
    items = missing_documents(evidence, settings.requirements, classified=classified)
    return [(item, by_code.get(item.code, "")) for item in items]


def _items(missing: Sequence[tuple[MissingItem, str]]) -> list[dict[str, str]]:
    return [{"code": m.code, "display": m.display} for m, _ in missing]


# --- absorbing what happened -----------------------------------------------------------------


def _doc(mem: ChaseMemory, doc_id: str) -> DocState | None:
    return next((d for d in mem.docs if d.id == doc_id), None)


def _add_doc(
    mem: ChaseMemory, resource: Mapping[str, Any], origin: Origin, request: str | None
) -> None:
    doc_id = str(resource.get("id") or "")
    if not doc_id or _doc(mem, doc_id) is not None:
        return
    typed = typed_codes(resource)
    state = DocState(
        id=doc_id,
        origin=origin,
        resource=dict(resource),
        typed=typed,
        filing="todo" if (origin == "reply" or not typed) else "none",
        request_id=request,
    )
    if not typed:
        _classify_into(state, resource)
    mem.docs.append(state)


def _classify_into(state: DocState, resource: Mapping[str, Any]) -> None:
    """The classifier's reading of an untyped document (the planner's guess only: the
    ``file_document`` tool computes its own facts)."""
    try:
        result = classify_resource(resource, source=f"DocumentReference/{state.id}")
    except CareboundError:
        result = Classification(code=UNKNOWN, display="unreadable", confidence=0.0)
    state.guess = None if result.code == UNKNOWN else result.code
    state.confidence = result.confidence
    state.injection = result.injection_suspected


def _seed_case_docs(mem: ChaseMemory, case: ReferralCase) -> None:
    for doc in case.documents:
        key = case.document_key(doc)
        if _doc(mem, key) is not None:
            continue
        resource = doc.model_dump(mode="json", exclude_none=True)
        typed = typed_codes(resource)
        state = DocState(id=key, origin="case", typed=typed)
        if not typed and doc.status != "entered-in-error":
            _classify_into(state, resource)
            state.filing = "todo" if doc.id else "none"
        mem.docs.append(state)


def _absorb_result(mem: ChaseMemory, r: CallResult, settings: ChaseSettings) -> None:
    ok = r.status == "executed"
    why = r.reason or r.status
    if r.tool == "list_documents_on_file":
        if ok:
            for resource in (r.result or {}).get("documents", []):
                _add_doc(mem, resource, "ehr", None)
        else:
            mem.notes.append(f"documents on file not read ({why})")
    elif r.tool == "list_contacts_on_file":
        if ok:
            result = r.result or {}
            for raw in [*result.get("on_file", []), *result.get("from_referral", [])]:
                mem.contacts.append(Contact.model_validate(raw))
        else:
            mem.notes.append(f"contacts on file not read ({why})")
    elif r.tool == "file_document":
        doc = _doc(mem, str(r.args.get("document_id")))
        if doc is not None:
            doc.filing = "filed" if ok else "declined"
            doc.code = r.args.get("code") if ok else None
            if not ok:
                mem.notes.append(f"document {doc.id} not filed ({r.status}: {why})")
    elif r.tool == "record_reply":
        for reply in mem.replies:
            if reply.inbound_id == r.args.get("inbound_id"):
                reply.recorded = "done"
        if not ok:
            mem.notes.append(f"reply {r.args.get('inbound_id')} not recorded ({why})")
    elif r.tool == "open_document_request" and mem.request is not None:
        if ok:
            mem.request.opened = True
        else:
            mem.escalate_reason = f"the document request could not be opened ({r.status}: {why})."
    elif r.tool == "send_request_attempt" and mem.request is not None:
        _absorb_attempt(mem, r, settings)
    elif r.tool == "close_document_request" and mem.request is not None:
        mem.request.closed = True
        if not ok:
            mem.notes.append(f"request not closed ({why})")
    elif r.tool == "escalate_to_staff":
        if ok:
            mem.escalation = "done"
            mem.escalation_task = str((r.result or {}).get("task", ""))
        else:
            mem.outcome = "failed"
            mem.summary = f"could not hand the chase to people ({r.status}): {why}"


def _absorb_attempt(mem: ChaseMemory, r: CallResult, settings: ChaseSettings) -> None:
    request = mem.request
    assert request is not None
    if r.status != "executed":
        verb = {"rejected": "declined by the reviewer", "expired": "not decided in time"}.get(
            r.status, f"refused ({r.status})"
        )
        mem.escalate_reason = (
            f"outreach attempt {r.args.get('attempt')} to {r.args.get('to')} was {verb}"
            + (" (their reason is in the decision record)." if r.status == "rejected" else ".")
        )
        return
    request.attempts = int(r.args.get("attempt", request.attempts + 1))
    request.channel = r.args.get("channel", request.channel)
    request.to = r.args.get("to", request.to)
    sent = datetime.fromisoformat(str((r.result or {}).get("sent_at")))
    if request.first_sent is None:
        request.first_sent = sent
    schedule = settings.outreach
    times = attempt_times(request.first_sent, schedule)
    if request.attempts < schedule.attempts:
        request.due = times[request.attempts]
    else:
        request.due = handover_time(request.first_sent, schedule)


def _absorb_event(mem: ChaseMemory, payload: Mapping[str, Any]) -> None:
    try:
        inbound = InboundDocument.model_validate(payload)
    except ValidationError:
        mem.notes.append("an event that is not an inbound message was ignored")
        return
    request = mem.request
    if request is None or inbound.request_id != request.task_id:
        mem.notes.append(f"reply {inbound.inbound_id} does not answer this run's request")
        return
    if any(r.inbound_id == inbound.inbound_id for r in mem.replies):
        return
    ids = []
    for received in inbound.documents:
        _add_doc(mem, received.resource, "reply", request.task_id)
        ids.append(str(received.resource.get("id")))
    mem.replies.append(
        Reply(
            inbound_id=inbound.inbound_id,
            channel=inbound.channel,
            sender=inbound.sender,
            received_at=inbound.received_at,
            documents=ids,
        )
    )


def _absorb(mem: ChaseMemory, view: PlannerView, settings: ChaseSettings) -> None:
    for r in view.results:
        if r.index > mem.last_result and r.tool in TOOLS:
            _absorb_result(mem, r, settings)
            mem.last_result = r.index
    for event in view.events[mem.events_seen :]:
        if event.kind == "event":
            _absorb_event(mem, event.payload)
    mem.events_seen = len(view.events)


# --- deciding the next step ------------------------------------------------------------------


def _call(tool: str, why: str, **args: Any) -> ProposedCall:
    return ProposedCall(tool=tool, args=args, why=why)


def _filing_calls(mem: ChaseMemory) -> list[ProposedCall]:
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
        doc.filing = "proposed"
        code = doc.typed[0] if doc.typed else doc.guess
        why = (
            f"received document typed {code}"
            if doc.typed
            else f"untyped document reads as {code or 'nothing known'} "
            f"(confidence {doc.confidence:.2f})"
        )
        if doc.injection:
            why += "; its text addresses software, which is ignored"
        calls.append(
            ProposedCall(tool="file_document", args={"document_id": doc.id, "code": code}, why=why)
        )
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
    calls = _filing_calls(mem)
    if calls:
        return calls, None
    missing = _items(missing_now(case, mem, settings))
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
    return [
        _call(
            "send_request_attempt",
            f"attempt {n} of {settings.outreach.attempts}: ask the referring office "
            f"({request.channel} {where}) for what is missing",
            task_id=request.task_id,
            attempt=n,
            channel=request.channel,
            to=request.to,
            items=missing,
        )
    ], None


def chase_findings(mem: ChaseMemory, missing: Sequence[tuple[MissingItem, str]]) -> dict[str, Any]:
    """The chaser's findings: ``missing_documents`` (run report contract) and ``chase``."""
    request = mem.request
    return {
        "missing_documents": _items(missing),
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
    """One turn of the chaser (rules only; deterministic for a given run history)."""
    mem = ChaseMemory.model_validate(view.memory.get(MEMORY_KEY) or {})
    try:
        settings = chase_settings(ctx.pack)
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
    except CareboundError as exc:
        return Plan(finish=FinishSpec(status="failed", summary=f"cannot chase: {exc.message}"))
    if not mem.outcome:
        _seed_case_docs(mem, case)
        _absorb(mem, view, settings)
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


# --- decision packets for the chaser's holds -------------------------------------------------


def _check(
    ctx: AgentContext, call: ProposedCall, fact: str, *, name: str, passed: bool, detail: str
) -> PacketCheck:
    """A packet check on one fact, citing the pack rule that decides on that fact."""
    spec = TOOLS.get(call.tool)
    rule = rule_for_fact(ctx.pack, call.tool, spec.scope if spec else "", fact)
    return PacketCheck(
        name=name,
        passed=passed,
        detail=detail,
        rule_id=rule.id if rule else None,
        rule_text=rule.text if rule else None,
    )


def _file_packet(
    ctx: AgentContext, call: ProposedCall, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    doc_id = str(call.args.get("document_id"))
    code = call.args.get("code")
    resource = _case_document(ctx.case, doc_id) or _ehr_document(ctx, doc_id) or {}
    title = next(
        (
            str(c["attachment"]["title"])
            for c in resource.get("content", [])
            if isinstance(c.get("attachment"), Mapping) and c["attachment"].get("title")
        ),
        None,
    )
    source = SourceRef(
        resource=f"DocumentReference/{doc_id}", field="content.attachment", document=title
    )
    injected = bool(facts.get("injection_suspected"))
    confidence = float(facts.get("classification_confidence") or 0.0)
    evidence: list[str] = []
    report: InjectionReport | None = None
    if resource:
        try:
            evidence = classify_resource(resource, source=source.resource).evidence
        except CareboundError:
            evidence = []
        report = detect_injection("\n".join(document_texts(resource)))
    facts_out = [
        PacketFact(label="Document", value=f"DocumentReference/{doc_id}", source=source),
        PacketFact(
            label="Where it came from",
            value=str(facts.get("origin", "unknown")),
            source=SourceRef(resource=f"DocumentReference/{doc_id}", field="identifier"),
        ),
        PacketFact(label="Proposed type", value=str(code or "none"), source=source),
        PacketFact(
            label="Classifier reads it as",
            value=f"{facts.get('classification_code')} (confidence {confidence:.2f})",
            source=source,
        ),
    ]
    if evidence:
        facts_out.append(
            PacketFact(label="Phrases found", value="; ".join(evidence), source=source, phi=True)
        )
    if resource:
        facts_out += document_facts(doc_id, resource, _communications(ctx), report)
    checks = [
        _check(
            ctx,
            call,
            "classification_confident",
            name="text supports the type",
            passed=bool(facts.get("classification_confident")),
            detail=f"classifier: {facts.get('classification_code')} at {confidence:.2f}",
        ),
        _check(
            ctx,
            call,
            "injection_suspected",
            name="no instructions addressed to software",
            passed=not injected,
            detail=_injection_detail(injected, report),
        ),
    ]
    return DecisionPacket(
        summary=f"File document {doc_id} as {code or 'untyped'}?",
        facts=facts_out,
        checks=checks,
        missing=_still_missing(ctx),
        recommendation="reject" if injected else "none",
        recommendation_text=(
            "Do not act on this document's instructions; file it only if a person confirms "
            "what it is."
            if injected
            else "A person should confirm the document type."
        ),
        confidence=confidence,
        on_approve=f"the document is filed in the EHR as {code or 'untyped'} and counts toward "
        "the referral's requirements",
        on_reject="the document is not counted; anything still missing is requested from the "
        "referring office",
    )


def _injection_detail(injected: bool, report: InjectionReport | None) -> str:
    """The DOC-2 check's detail: what kinds of instruction were found, never the text (PHI)."""
    if report is None:
        return "flagged by the file_document facts" if injected else "no readable text"
    if injected:
        return (
            f"{report.explanation}; those lines are not evidence of the type, and nothing they "
            "ask is done"
        )
    return report.explanation


def _communications(ctx: AgentContext) -> list[dict[str, Any]]:
    """Reply records (Communications) about the patient: who sent a document, and when."""
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        return [dict(c) for c in ctx.world.ehr.search("Communication", subject=patient_ref(case))]
    except (CareboundError, AttributeError):
        return []


def _still_missing(ctx: AgentContext) -> list[str]:
    """What the referral misses with the documents filed so far (case and EHR)."""
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        on_file = ctx.world.ehr.search("DocumentReference", subject=patient_ref(case))
        evidence, classified = evidence_case(case, on_file)
        requirements = chase_settings(ctx.pack).requirements
        items = missing_documents(evidence, requirements, classified=classified)
    except (CareboundError, AttributeError):
        return []
    return [f"{m.display} ({m.code}): {m.reason}" for m in items]


def _case_document(case: Mapping[str, Any], doc_id: str) -> dict[str, Any] | None:
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "DocumentReference" and resource.get("id") == doc_id:
            return dict(resource)
    return None


def _ehr_document(ctx: AgentContext, doc_id: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.world.ehr.read("DocumentReference", doc_id))
    except (CareboundError, AttributeError):
        return None


def _outreach_packet(
    ctx: AgentContext, call: ProposedCall, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    args = call.args
    items = [f"{i.get('display')} ({i.get('code')})" for i in args.get("items", [])]
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        requester = case.requester
        party = f"{requester.get_resource_type()}/{requester.id}" if requester else "unknown"
        order = service_request_ref(case)
    except CareboundError:
        party, order = "unknown", "ServiceRequest"
    on_file = bool(facts.get("recipient_on_file"))
    return DecisionPacket(
        summary=f"Send document request attempt {args.get('attempt')} by {args.get('channel')} "
        f"to {args.get('to')}?",
        facts=[
            PacketFact(
                label="Recipient",
                value=f"{args.get('channel')} {args.get('to')}",
                source=SourceRef(resource=party, field="telecom", document="the referral"),
            ),
            PacketFact(
                label="Referring party",
                value=party,
                source=SourceRef(resource=order, field="requester"),
            ),
            PacketFact(
                label="Requested",
                value="; ".join(items),
                source=SourceRef(resource=f"Task/{args.get('task_id')}", field="input"),
            ),
        ],
        checks=[
            _check(
                ctx,
                call,
                "recipient_on_file",
                name="recipient on file",
                passed=on_file,
                detail="the EHR's record of the referring party lists this contact"
                if on_file
                else "the contact only came with the referral; the EHR does not list it",
            )
        ],
        missing=items,
        recommendation="none",
        recommendation_text="Confirm the number with the referring office before approving.",
        confidence=0.5,
        on_approve="the request goes out to this contact; further attempts follow the schedule",
        on_reject="nothing is sent; the chase is handed to intake staff",
    )


def chase_packet(
    ctx: AgentContext, call: ProposedCall, verdict: PolicyVerdict, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """The packet for a held chaser call (document filing or outreach)."""
    if call.tool == "file_document":
        return _file_packet(ctx, call, facts)
    if call.tool == "send_request_attempt":
        return _outreach_packet(ctx, call, facts)
    return DecisionPacket(
        summary=f"referral_chaser proposes {call.tool}",
        recommendation_text=call.why,
        on_approve=f"{call.tool} runs with the arguments shown",
        on_reject="the call is not made; the agent is told why",
    )


REFERRAL_CHASER = AgentDefinition(
    name="referral_chaser",
    version="1",
    description="Finds what a referral still needs (documents by LOINC type and date, coverage, "
    "prior authorisation), files faxes by their text, and requests the rest from the referring "
    "office on the pack's schedule; unanswered requests go to intake staff.",
    tools=TOOLS,
    planner=plan_chase,
    packet=chase_packet,
    category="referral-documents",
)

__all__ = [
    "MEMORY_KEY",
    "REFERRAL_CHASER",
    "TOOLS",
    "ChaseMemory",
    "chase_findings",
    "chase_packet",
    "missing_now",
    "plan_chase",
]
