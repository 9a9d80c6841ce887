"""The packet builder: prepare the decision a reviewer makes on a referral, and record it.

It reads the documents on file, assesses the referral against the pack (the document
requirements of ``settings.referral_chaser`` and the acceptance criteria of
``settings.packet_builder``), and proposes ``set_referral_status``: ``accepted`` for a live
order (recommending approval only when every check passes), ``rejected`` when the order was
revoked or already completed. Rule REF-1 holds that call for an intake coordinator, who reads the
packet built here: what is decided, the facts with their sources, every check with the pack
rule it applies, what is missing, the recommendation and its confidence, and what approve and
reject will do. Approve moves the referral Task as the performer; reject changes nothing.

Minimum necessary: the packet names the patient (name and birth date, to be sure of who it is),
the member id and the reason for referral, all marked PHI; no address, phone or other
identifiers. Its memory lives under ``memory["packet"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    CallResult,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    ChaseSettings,
    CitedRequirement,
    PacketSettings,
    chase_settings,
    packet_settings,
)
from carebound.agents.reconciler._coverage import NOT_VERIFIED
from carebound.approvals import DecisionPacket, PacketCheck, PacketFact, SourceRef
from carebound.domain.coverage import case_coverage
from carebound.domain.documents import (
    Classification,
    MissingItem,
    detect_injection,
    document_texts,
    missing_documents,
)
from carebound.fhir import ReferralCase, concept_label, document_date, document_loinc_codes
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue
from carebound.tools.reconcile._coverage import payer_coverage
from carebound.tools.reconcile._records import payer_view
from carebound.tools.referral import (
    PACKET_TOOLS,
    classify_resource,
    is_confident,
    is_received,
    parse_document,
    patient_ref,
    reference_of,
    referral_case,
    service_request_ref,
)

TOOLS = {t.name: t for t in PACKET_TOOLS}
MEMORY_KEY = "packet"
_ENDED_ORDER = ("revoked", "completed")


class Assessment(BaseModel):
    """How a referral measures up, and what the agent proposes."""

    model_config = ConfigDict(frozen=True)

    checks: list[PacketCheck]
    missing: list[MissingItem]
    status: Literal["accepted", "rejected"]
    recommendation: Literal["approve", "reject"]
    confidence: float
    reason: str
    auto_classified: list[str] = Field(default_factory=list)
    """Untyped documents that count only through the classifier (no person confirmed them)."""


# --- assessing -------------------------------------------------------------------------------


def _applies(requirement: CitedRequirement, case: ReferralCase) -> bool:
    """Whether a requirement applies to the case (the rule of ``missing_documents``)."""
    if requirement.specialties is not None:
        wanted = {s.casefold() for s in requirement.specialties}
        if case.specialty is None or case.specialty.casefold() not in wanted:
            return False
    if requirement.payers is not None and not set(requirement.payers) & set(case.payer_ids):
        return False
    return requirement.when == "always" or case.authorization_required


def evidence_case(
    case: ReferralCase, on_file: Sequence[Mapping[str, Any]]
) -> tuple[ReferralCase, dict[str, Classification]]:
    """The case with the patient's documents on file added (except received ones nobody filed
    yet), and the classifications of its untyped documents."""
    known = {case.document_key(d) for d in case.documents}
    extra = [
        parse_document(r, source=f"DocumentReference/{r.get('id')}")
        for r in on_file
        if r.get("id") not in known and not (is_received(r) and r.get("docStatus") == "preliminary")
    ]
    evidence = dataclasses.replace(case, documents=case.documents + tuple(extra))
    classified: dict[str, Classification] = {}
    for doc in evidence.documents:
        if document_loinc_codes(doc):
            continue
        key = evidence.document_key(doc)
        raw = doc.model_dump(mode="json", exclude_none=True)
        try:
            classified[key] = classify_resource(raw, source=key)
        except CareboundError:
            continue
    return evidence, classified


def _matching(
    evidence: ReferralCase, classified: Mapping[str, Classification], code: str
) -> list[DocumentReference]:
    found = []
    for doc in evidence.documents:
        if doc.status == "entered-in-error":
            continue
        codes = document_loinc_codes(doc)
        result = classified.get(evidence.document_key(doc))
        if code in codes or (not codes and result is not None and is_confident(result, code)):
            found.append(doc)
    return found


def _passed_detail(
    requirement: CitedRequirement,
    evidence: ReferralCase,
    classified: Mapping[str, Classification],
) -> str:
    if requirement.kind == "coverage":
        in_force = [v for v in case_coverage(evidence) if v.in_force]
        return in_force[0].explanation if in_force else "coverage in force on file"
    if requirement.kind == "prior_auth":
        if not evidence.authorization_required:
            return "the payer does not require prior authorization"
        return f"preAuthRef {', '.join(evidence.pre_auth_refs)} on file"
    docs = _matching(evidence, classified, requirement.code)
    dated = sorted(
        ((document_date(d), evidence.document_key(d)) for d in docs),
        key=lambda pair: str(pair[0]),
    )
    if not dated:
        return "present"
    when, key = dated[-1]
    return f"DocumentReference/{key} dated {when.isoformat() if when else 'undated'}"


def _instruction_checks(evidence: ReferralCase) -> list[PacketCheck]:
    """DOC-2 in the acceptance packet: a failed check for each document whose text carries
    instructions aimed at software or staff (typed ones too: a type does not vouch for the
    text). The detail names the kinds found, never the text (PHI)."""
    checks = []
    for doc in evidence.documents:
        raw = doc.model_dump(mode="json", exclude_none=True)
        report = detect_injection("\n".join(document_texts(raw)))
        if report.flagged:
            key = evidence.document_key(doc)
            checks.append(
                PacketCheck(
                    name="no instructions addressed to software",
                    passed=False,
                    detail=f"DocumentReference/{key}: {report.explanation}; a person reads it "
                    "before the referral is accepted, and nothing it asks is done",
                    rule_id="DOC-2",
                )
            )
    return checks


def assess(
    case: ReferralCase,
    on_file: Sequence[Mapping[str, Any]],
    chase: ChaseSettings,
    packet: PacketSettings,
    open_issues: Sequence[str] = (),
    *,
    payer: PayerCheck | None = None,
) -> Assessment:
    """Check a referral against the pack and decide what to propose.

    ``payer`` is what the payer said of the member's coverage (``payer_check``); None: nobody
    asked it. A check that could not be verified never decides the recommendation.

    Raises:
        FhirInputError: a document on file is not valid FHIR.
    """
    evidence, classified = evidence_case(case, on_file)
    missing = missing_documents(evidence, chase.requirements, classified=classified)
    failing = {m.code: m for m in missing}
    checks: list[PacketCheck] = []
    for requirement in chase.requirements:
        if not _applies(requirement, evidence):
            continue
        item = failing.get(requirement.code)
        checks.append(
            PacketCheck(
                name=requirement.display,
                passed=item is None,
                detail=item.reason if item else _passed_detail(requirement, evidence, classified),
                rule_id=requirement.id,
                rule_text=requirement.text,
            )
        )
    checks += _instruction_checks(evidence)
    request = case.service_request
    for criterion in packet.criteria:
        if criterion.check == "order_active":
            passed, detail = (
                request.status == "active",
                f"ServiceRequest.status is {request.status}",
            )
        elif criterion.check == "parties_named":
            service = concept_label(request.code)
            passed = case.requester is not None and service is not None
            who = reference_of(case.requester) if case.requester is not None else "no requester"
            detail = f"requester {who}; service {service or 'not named'}"
        elif criterion.check == "payer_verified":
            verified, detail = payer or (None, f"{NOT_VERIFIED}: the payer was not asked")
            checks.append(
                PacketCheck(
                    name="payer verification",
                    passed=verified,
                    detail=detail,
                    rule_id=criterion.id,
                    rule_text=criterion.text,
                )
            )
            continue
        else:
            passed = not open_issues
            detail = "; ".join(open_issues) or "no high-risk mismatch left open"
        checks.append(
            PacketCheck(
                name=criterion.check.replace("_", " "),
                passed=passed,
                detail=detail,
                rule_id=criterion.id,
                rule_text=criterion.text,
            )
        )
    auto = [
        evidence.document_key(d)
        for d in evidence.documents
        if not document_loinc_codes(d)
        and (r := classified.get(evidence.document_key(d))) is not None
        and is_confident(r, r.code)
    ]
    failed = [c for c in checks if c.passed is False]
    if request.status in _ENDED_ORDER:
        return Assessment(
            checks=checks,
            missing=missing,
            status="rejected",
            recommendation="approve",
            confidence=0.9,
            reason=f"The order is {request.status}: there is nothing left to schedule.",
            auto_classified=auto,
        )
    if not failed:
        return Assessment(
            checks=checks,
            missing=missing,
            status="accepted",
            recommendation="approve",
            confidence=0.85 if auto else 0.95,
            reason="Every check passed"
            + (" (some documents typed by the classifier only)." if auto else "."),
            auto_classified=auto,
        )
    names = ", ".join(f"{c.rule_id or c.name}" for c in failed)
    return Assessment(
        checks=checks,
        missing=missing,
        status="accepted",
        recommendation="reject",
        confidence=0.8,
        reason=f"Not ready to accept: {names} failed.",
        auto_classified=auto,
    )


PayerCheck = tuple[bool | None, str]
"""What the payer said of the member's coverage: passed (confirmed and in force), failed (no such
member, or not in force), or None (not verified: no payer connected, no member id to ask)."""


def payer_check(ctx: AgentContext, case: ReferralCase) -> PayerCheck:
    """Ask the payer (a read of the run's own world, like the facts the gate decides on) whether
    it holds the referral's member with coverage in force on the date of service."""
    member_id = case.demographics().member_id
    payer = getattr(ctx.world, "payer", None)
    try:
        view = payer_view(payer, [member_id] if member_id else [])
        if not view.connected:
            return None, f"{NOT_VERIFIED}: no payer is connected"
        if not member_id:
            return None, f"{NOT_VERIFIED}: the referral carries no member id to ask about"
        if view.record is None:
            return False, "the payer answered: it has no coverage under the member id on file"
        verdict = payer_coverage(ctx.case, view)
    except (CareboundError, LookupError, ValueError) as exc:
        return None, f"{NOT_VERIFIED}: the payer could not be read ({type(exc).__name__})"
    if verdict is not None and not verdict.in_force:
        return False, f"the payer answered: {verdict.explanation}"
    return True, "the payer confirms the member, with coverage in force on the date of service"


def open_issues_of(findings: Mapping[str, Any]) -> list[str]:
    """What a run's findings leave open for the decision, as short lines: high-risk mismatches
    (``findings["mismatches"]``) and the composing agent's ``findings["intake"]["open_issues"]``
    (e.g. a reconciliation that did not finish)."""
    issues = []
    for item in findings.get("mismatches", []) or []:
        if isinstance(item, Mapping) and item.get("risk") == "high":
            issues.append(f"{item.get('field')}: high-risk mismatch ({item.get('action')})")
    intake = findings.get("intake")
    if isinstance(intake, Mapping):
        issues.extend(str(i) for i in intake.get("open_issues", []) or [])
    return issues[:20]


# --- the packet ------------------------------------------------------------------------------


def _facts(case: ReferralCase, evidence: ReferralCase) -> list[PacketFact]:
    request = case.service_request
    order = service_request_ref(case)
    patient = patient_ref(case)
    demo = case.demographics()
    name = " ".join([*demo.given, demo.family or ""]).strip() or "(no name)"
    facts = [
        PacketFact(
            label="Service requested",
            value=concept_label(request.code) or "(not named)",
            source=SourceRef(resource=order, field="code"),
        ),
        PacketFact(
            label="Specialty",
            value=case.specialty or "(not named)",
            source=SourceRef(resource=order, field="performerType"),
        ),
        PacketFact(
            label="Order status",
            value=f"{request.status}, intent {request.intent}",
            source=SourceRef(resource=order, field="status"),
        ),
        PacketFact(
            label="Ordered on",
            value=case.authored_on.isoformat() if case.authored_on else "(no authoredOn)",
            source=SourceRef(resource=order, field="authoredOn"),
        ),
        PacketFact(
            label="Patient", value=name, source=SourceRef(resource=patient, field="name"), phi=True
        ),
        PacketFact(
            label="Birth date",
            value=demo.birth_date.isoformat() if demo.birth_date else "(unknown)",
            source=SourceRef(resource=patient, field="birthDate"),
            phi=True,
        ),
    ]
    reasons = [concept_label(r) for r in request.reasonCode or []]
    if any(reasons):
        facts.append(
            PacketFact(
                label="Reason for referral",
                value="; ".join(r for r in reasons if r),
                source=SourceRef(resource=order, field="reasonCode"),
                phi=True,
            )
        )
    if case.requester is not None:
        requester = case.requester
        npis = [
            i.value
            for i in getattr(requester, "identifier", None) or []
            if i.system == "http://hl7.org/fhir/sid/us-npi"
        ]
        label = getattr(requester, "name", None)
        shown = label if isinstance(label, str) else _human_name(label)
        facts.append(
            PacketFact(
                label="Referring provider",
                value=f"{shown or reference_of(requester)}" + (f", NPI {npis[0]}" if npis else ""),
                source=SourceRef(resource=reference_of(requester), field="identifier"),
            )
        )
    for coverage in case.coverage[:2]:
        ref = reference_of(coverage)
        facts.append(
            PacketFact(
                label="Coverage",
                value=f"{coverage.status}; payer {_payer_name(case, coverage) or '(unknown)'}",
                source=SourceRef(resource=ref, field="payor"),
            )
        )
        if demo.member_id:
            facts.append(
                PacketFact(
                    label="Member id",
                    value=demo.member_id,
                    source=SourceRef(resource=ref, field="subscriberId"),
                    phi=True,
                )
            )
    for response in case.authorization_sources():
        facts.append(
            PacketFact(
                label="Prior authorization",
                value="required by the payer",
                source=SourceRef(
                    resource=reference_of(response), field="insurance.item.authorizationRequired"
                ),
            )
        )
    for claim_response in case.claim_responses:
        if claim_response.preAuthRef:
            facts.append(
                PacketFact(
                    label="Prior authorization number",
                    value=claim_response.preAuthRef,
                    source=SourceRef(resource=reference_of(claim_response), field="preAuthRef"),
                )
            )
    for doc in evidence.documents:
        key = evidence.document_key(doc)
        codes = document_loinc_codes(doc)
        when = document_date(doc)
        title = doc.description or (
            doc.content[0].attachment.title if doc.content and doc.content[0].attachment else None
        )
        facts.append(
            PacketFact(
                label=f"Document {', '.join(codes) or 'untyped'}",
                value=f"dated {when.isoformat() if when else 'undated'}",
                source=SourceRef(
                    resource=f"DocumentReference/{key}", field="date", document=title or key
                ),
                phi=True,
            )
        )
    return facts


def _payer_name(case: ReferralCase, coverage: Any) -> str | None:
    for payor in coverage.payor or []:
        org = case.resolve(payor, container=coverage)
        name = getattr(org, "name", None)
        if isinstance(name, str) and name:
            return name
        if payor.display:
            return str(payor.display)
        if payor.identifier is not None and payor.identifier.value:
            return str(payor.identifier.value)
        if payor.reference:
            return str(payor.reference)
    return None


def _human_name(names: Any) -> str | None:
    if not names:
        return None
    first = names[0]
    parts = [*(first.prefix or []), *(first.given or []), first.family or ""]
    return " ".join(p for p in parts if p).strip() or None


def _on_file(ctx: AgentContext, case: ReferralCase) -> list[dict[str, Any]]:
    try:
        return [
            dict(d) for d in ctx.world.ehr.search("DocumentReference", subject=patient_ref(case))
        ]
    except (CareboundError, AttributeError):
        return []


def referral_packet(
    ctx: AgentContext, call: ProposedCall, verdict: PolicyVerdict, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """The packet for accepting or rejecting a referral, built from the case and the EHR."""
    status = str(call.args.get("status"))
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        on_file = _on_file(ctx, case)
        evidence, _ = evidence_case(case, on_file)
        assessment = assess(
            case,
            on_file,
            chase_settings(ctx.pack),
            packet_settings(ctx.pack),
            [str(i) for i in call.args.get("open_issues", [])],
            payer=payer_check(ctx, case),
        )
    except CareboundError as exc:
        return DecisionPacket(
            summary=f"Set the referral to {status}? (the case could not be read: {exc.message})",
            recommendation="reject",
            recommendation_text="The referral's data could not be read; do not decide on it.",
            on_approve=f"the referral Task becomes {status}",
            on_reject="nothing changes",
        )
    order = service_request_ref(case)
    what = case.specialty or "the referred service"
    then = (
        "; the referral is then routed to scheduling (a Task for the scheduling team)"
        if ctx.agent == "referral_intake" and status == "accepted"
        else ""
    )
    agrees = (assessment.status == status) and assessment.recommendation == "approve"
    return DecisionPacket(
        summary=f"{'Accept' if status == 'accepted' else 'Reject'} the referral {order} ({what})?",
        facts=_facts(case, evidence),
        checks=assessment.checks,
        missing=[f"{m.display} ({m.code}): {m.reason}" for m in assessment.missing],
        recommendation="approve" if agrees else "reject",
        recommendation_text=f"{assessment.reason} {call.why}".strip(),
        confidence=assessment.confidence,
        on_approve=f"the referral Task becomes {status} (set as the performer), with the reason "
        f"'{call.args.get('reason')}'{then}",
        on_reject="nothing changes: the referral Task keeps its status and the run ends with "
        "your reason, so intake staff can follow up",
    )


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


PACKET_BUILDER = AgentDefinition(
    name="packet_builder",
    version="1",
    description="Assesses a referral against the pack and asks an intake coordinator to accept "
    "or reject it, with a decision packet; records the decision on the referral Task.",
    tools=TOOLS,
    planner=plan_packet,
    packet=referral_packet,
    category="referral-decision",
)

__all__ = [
    "MEMORY_KEY",
    "PACKET_BUILDER",
    "TOOLS",
    "Assessment",
    "PayerCheck",
    "assess",
    "evidence_case",
    "open_issues_of",
    "packet_findings",
    "payer_check",
    "plan_packet",
    "referral_packet",
]
