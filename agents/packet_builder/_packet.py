"""The decision packet a reviewer reads on a referral: what is decided, the facts with their
sources (minimum necessary: name, birth date, member id and reason for referral, marked PHI), every
check with the pack rule it applies, what is missing, the recommendation and its confidence; with
a model for the ``summarise`` task, a cited plain-language summary beside the facts (``_summary``).
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
    packet_settings,
)
from carebound.approvals import DecisionPacket, PacketFact, SourceRef
from carebound.fhir import ReferralCase, concept_label, document_date, document_loinc_codes
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue
from carebound.tools.referral import (
    NoArgs,
    list_documents_on_file,
    patient_ref,
    reference_of,
    referral_case,
    service_request_ref,
)

from ._assess import assess, evidence_case, payer_check
from ._summary import with_summary

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


def _on_file(ctx: AgentContext) -> list[dict[str, Any]]:
    """The documents on file in the EHR, read through the audited ``list_documents_on_file``."""
    try:
        return [dict(d) for d in ctx.read(list_documents_on_file, NoArgs())["documents"]]
    except CareboundError:
        return []


def referral_packet(
    ctx: AgentContext, call: ProposedCall, verdict: PolicyVerdict, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """The packet for accepting or rejecting a referral, built from the case and the EHR."""
    status = str(call.args.get("status"))
    try:
        case = referral_case(ctx.case, source=f"run {ctx.run_id} case")
        on_file = _on_file(ctx)
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
    packet = DecisionPacket(
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
    return with_summary(ctx, packet)
