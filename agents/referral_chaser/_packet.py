"""Decision packets for the chaser's holds: filing a document whose text does not support its
type, and outreach to a contact not on file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carebound._agent import (
    AgentContext,
    ProposedCall,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    chase_settings,
    fax_referral_packet,
    rule_for_fact,
)
from carebound.agents.packet_builder import evidence_case
from carebound.approvals import DecisionPacket, PacketCheck, PacketFact, SourceRef
from carebound.domain.documents import (
    InjectionReport,
    detect_injection,
    document_texts,
    missing_documents,
)
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue
from carebound.tools.referral import (
    NoArgs,
    ReadDocumentArgs,
    SecondOpinion,
    classify_resource,
    list_documents_on_file,
    list_replies_on_file,
    read_document,
    referral_case,
    service_request_ref,
)

from ._document_facts import document_facts
from ._memory import TOOLS

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
    opinion = _second_opinion(call)
    facts_out += _opinion_facts(opinion, source)
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
    if opinion is not None and "classifiers_agree" in facts:
        checks.append(
            _check(
                ctx,
                call,
                "classification_confident",
                name="the rules and the model agree",
                passed=bool(facts.get("classifiers_agree")),
                detail=f"rules: {facts.get('classification_code')} at {confidence:.2f}; "
                f"model: {opinion.code} at {opinion.confidence:.2f}",
            )
        )
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
            else "The rules and the model read this document differently (or not surely): a "
            "person should confirm the document type."
            if opinion is not None
            else "A person should confirm the document type."
        ),
        confidence=confidence,
        on_approve=f"the document is filed in the EHR as {code or 'untyped'} and counts toward "
        "the referral's requirements",
        on_reject="the document is not counted; anything still missing is requested from the "
        "referring office",
    )


def _second_opinion(call: ProposedCall) -> SecondOpinion | None:
    """The model's reading the filing carries (None: none, or not readable)."""
    raw = call.args.get("second_opinion")
    if not isinstance(raw, Mapping):
        return None
    try:
        return SecondOpinion.model_validate(raw)
    except ValueError:
        return None


def _opinion_facts(opinion: SecondOpinion | None, source: SourceRef) -> list[PacketFact]:
    """The model's reading beside the rules' (what it read of the date, sender and patient is
    PHI: masked until revealed)."""
    if opinion is None:
        return []
    facts = [
        PacketFact(
            label="A model reads it as",
            value=f"{opinion.code} (confidence {opinion.confidence:.2f}, {opinion.model})",
            source=source,
        )
    ]
    for label, value in (
        ("Date the model read", opinion.document_date),
        ("Sender the model read", opinion.sender),
        ("Patient the model read", opinion.patient),
    ):
        if value:
            facts.append(PacketFact(label=label, value=value, source=source, phi=True))
    return facts


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
    """Reply records (Communications) about the patient: who sent a document, and when (read
    through the audited ``list_replies_on_file``)."""
    try:
        return [dict(c) for c in ctx.read(list_replies_on_file, NoArgs())["communications"]]
    except CareboundError:
        return []


def _still_missing(ctx: AgentContext) -> list[str]:
    """What the referral misses with the documents filed so far (case and EHR)."""
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        on_file = ctx.read(list_documents_on_file, NoArgs())["documents"]
        evidence, classified = evidence_case(case, on_file)
        requirements = chase_settings(ctx.pack).requirements
        items = missing_documents(evidence, requirements, classified=classified)
    except CareboundError:
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
        return dict(ctx.read(read_document, ReadDocumentArgs(document_id=doc_id)))
    except (CareboundError, ValueError):
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
    note = str(args.get("note") or "").strip()
    drafted = _drafted_parts(ctx, call, facts, note)
    advice = (
        "Read the model-written text: approve it, edit it (clear it to send the rule template "
        "alone), or reject."
        if note and on_file
        else "Confirm the number with the referring office before approving."
    )
    return DecisionPacket(
        summary=f"Send document request attempt {args.get('attempt')} by {args.get('channel')} "
        f"to {'the contact on file' if on_file else 'a contact not on file'}?",
        facts=[
            PacketFact(  # the number or address: PHI, as the call's masked ``to`` argument
                label="Recipient",
                value=f"{args.get('channel')} {args.get('to')}",
                source=SourceRef(resource=party, field="telecom", document="the referral"),
                phi=True,
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
            *drafted[0],
        ],
        checks=[
            *drafted[1],
            _check(
                ctx,
                call,
                "recipient_on_file",
                name="recipient on file",
                passed=on_file,
                detail="the EHR's record of the referring party lists this contact"
                if on_file
                else "the contact only came with the referral; the EHR does not list it",
            ),
        ],
        missing=items,
        recommendation="none",
        recommendation_text=advice,
        confidence=0.5,
        on_approve="the request goes out to this contact; further attempts follow the schedule",
        on_reject="nothing is sent; the chase is handed to intake staff",
    )


def _drafted_parts(
    ctx: AgentContext, call: ProposedCall, facts: Mapping[str, FactValue], note: str
) -> tuple[list[PacketFact], list[PacketCheck]]:
    """The model-written text of an outreach message, shown as such, and its checks (OUT-4)."""
    if not note:
        return [], []
    by = str(call.args.get("drafted_by") or "a model")
    fact = PacketFact(
        label=f"Free text, model-written ({by})",
        value=note,
        source=SourceRef(
            resource=f"Task/{call.args.get('task_id')}",
            field="payload.contentString",
            document="drafted by a model; the rest of the message is rule-made",
        ),
    )
    refused = bool(facts.get("note_refused"))
    check = _check(
        ctx,
        call,
        "note_refused",
        name="model-written text",
        passed=not refused,
        detail="refused by the drafting checks"
        if refused
        else "no digits, dates, deadlines, "
        "ids, codes, other documents, patient data, links, markup or instructions",
    )
    return [fact], [check]


def chase_packet(
    ctx: AgentContext, call: ProposedCall, verdict: PolicyVerdict, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """The packet for a held chaser call (document filing or outreach)."""
    if call.tool == "file_document":
        return _file_packet(ctx, call, facts)
    if call.tool == "create_referral_from_fax":
        return fax_referral_packet(ctx, call, facts)
    if call.tool == "send_request_attempt":
        return _outreach_packet(ctx, call, facts)
    return DecisionPacket(
        summary=f"referral_chaser proposes {call.tool}",
        recommendation_text=call.why,
        on_approve=f"{call.tool} runs with the arguments shown",
        on_reject="the call is not made; the agent is told why",
    )
