"""Decision packets of the reconciler's holds: both values with their sources, the checks that
passed and failed, and what approve and reject will do.

Everything shown is re-read from the run's case and connectors (the same assessments the hold
policy decided on), never taken from the planner. A packet carries only the PHI its decision
needs: the one field at issue, or the names and birth dates that tell family members apart.
"""

from __future__ import annotations

from collections.abc import Mapping

from carebound._agent import AgentContext, ProposedCall
from carebound._errors import ReadDeniedError
from carebound.approvals import DecisionPacket, PacketCheck, PacketFact, SourceRef
from carebound.domain.identity import PersonRecord
from carebound.guardrails import PolicyVerdict
from carebound.tools import FactValue
from carebound.tools.reconcile import (
    ApprovalAssessment,
    ApproveInvoiceArgs,
    FixAssessment,
    FixDemographicArgs,
    FixMemberIdArgs,
    LinkAssessment,
    LinkPatientArgs,
    MemberIdAssessment,
    reconcile_review_fix,
    reconcile_review_invoice,
    reconcile_review_link,
    reconcile_review_member_id,
)

from ._wording import describe

FHIR_PATHS = {
    "name.family": "name.family",
    "name.given": "name.given",
    "birthDate": "birthDate",
    "gender": "gender",
    "address": "address.line, address.city, address.state",
    "address.postalCode": "address.postalCode",
    "telecom.phone": "telecom.where(system='phone').value",
}

_ADVICE = {
    "dob_day_month_swap": "Day and month look swapped: confirm the date of birth with the "
    "patient or the referring office before approving.",
    "dob_differs": "Confirm the date of birth with the patient or the referring office.",
    "sex_differs": "Confirm administrative sex with the patient before changing the chart.",
    "hyphenated_surname_lost": "Check the legal surname on an ID document.",
    "name_differs": "The names differ beyond a nickname or typo: confirm this is one person.",
}


def _person(record: PersonRecord) -> str:
    name = " ".join([*record.given, record.family or ""]).strip() or "(no name)"
    born = record.birth_date.isoformat() if record.birth_date else "DOB unknown"
    return f"{name}, born {born}"


def _proposal_source(
    value_source: str, referral_ref: str, chart: str, path: str, kind: str
) -> SourceRef:
    if value_source == "referral":
        return SourceRef(resource=referral_ref, field=path, document="referral bundle")
    if value_source == "rule":
        return SourceRef(resource=chart, field=path, document=f"normalised by rule {kind}")
    return SourceRef(resource="proposal", document="neither the referral's nor a rule's value")


def _fix_packet(ctx: AgentContext, call: ProposedCall) -> DecisionPacket:
    args = FixDemographicArgs.model_validate(call.args)
    a: FixAssessment = ctx.read(reconcile_review_fix, args)
    chart = f"Patient/{args.patient_id}"
    path = FHIR_PATHS.get(args.field, args.field)
    referral_ref = a.referral_ref or "Patient (referral)"
    kind = a.mismatch.kind if a.mismatch else ""
    facts = [
        PacketFact(
            label="EHR chart now",
            value=a.current or "(empty)",
            source=SourceRef(resource=chart, field=path, document="EHR"),
            phi=True,
        ),
        PacketFact(
            label="Referral says",
            value=a.referral_value or "(empty)",
            source=SourceRef(resource=referral_ref, field=path, document="referral bundle"),
            phi=True,
        ),
        PacketFact(
            label="Proposed new value",
            value=args.value,
            source=_proposal_source(a.value_source, referral_ref, chart, path, kind),
            phi=True,
        ),
        PacketFact(
            label="Chart found by",
            value=a.method or "not found",
            source=SourceRef(resource=chart, field="identifier", document="EHR search"),
        ),
    ]
    checks = [
        PacketCheck(
            name=f"{args.field} comparison ({a.mismatch.kind})" if a.mismatch else "comparison",
            passed=a.mismatch is not None and a.mismatch.risk == "low",
            detail=describe(a.mismatch.field, a.mismatch.kind, a.mismatch.values)
            if a.mismatch
            else "referral and chart agree",
        ),
        PacketCheck(
            name="chart is the referral's patient",
            passed=a.patient_matched,
            detail=f"matched by {a.method}" if a.patient_matched else (a.error or "not matched"),
        ),
        PacketCheck(
            name="value is the rule's normalised value",
            passed=a.value_source == "rule",
            detail=f"the value comes from the {a.value_source}",
        ),
    ]
    return DecisionPacket(
        summary=f"Change {args.field} on EHR chart {chart} to the proposed value?",
        facts=facts,
        checks=checks,
        recommendation="none",
        recommendation_text=_ADVICE.get(kind, "A person must decide which value is right."),
        confidence=0.5,
        on_approve=f"{chart} {args.field} is set to the proposed value (reversible; before and "
        "after are audited). Edit to write another value (same field).",
        on_reject=f"{chart} keeps its value; the mismatch stays reported for follow-up with the "
        "referring office.",
    )


def _member_packet(ctx: AgentContext, call: ProposedCall) -> DecisionPacket:
    args = FixMemberIdArgs.model_validate(call.args)
    a: MemberIdAssessment = ctx.read(reconcile_review_member_id, args)
    coverage = f"Coverage/{args.coverage_id}"
    facts = [
        PacketFact(
            label="EHR member id now",
            value=a.current or "(empty)",
            source=SourceRef(resource=coverage, field="subscriberId", document="EHR"),
            phi=True,
        ),
        PacketFact(
            label="Referral member id",
            value=a.referral_value or "(none)",
            source=SourceRef(resource="Coverage (referral)", field="subscriberId"),
            phi=True,
        ),
        PacketFact(
            label="Proposed member id",
            value=args.value,
            source=SourceRef(resource="payer Coverage", field="subscriberId", document="payer"),
            phi=True,
        ),
    ]
    checks = [
        PacketCheck(
            name="payer confirms the proposed member id",
            passed=a.payer_confirms,
            detail="the payer holds a Coverage under this id"
            if a.payer_confirms
            else "the payer knows no Coverage under this id",
        ),
        PacketCheck(
            name=f"member id comparison ({a.mismatch.kind})" if a.mismatch else "comparison",
            passed=a.risk == "low",
            detail=describe(a.mismatch.field, a.mismatch.kind, a.mismatch.values)
            if a.mismatch
            else "no difference",
        ),
    ]
    return DecisionPacket(
        summary=f"Change the member id on EHR {coverage}?",
        facts=facts,
        checks=checks,
        recommendation="approve" if a.payer_confirms else "reject",
        recommendation_text="The payer confirms the new member id (a new card?)."
        if a.payer_confirms
        else "The payer does not know this member id.",
        confidence=0.8 if a.payer_confirms else 0.6,
        on_approve=f"{coverage} subscriberId is set to the proposed id (reversible, audited).",
        on_reject=f"{coverage} keeps its member id; the difference stays reported.",
    )


def _link_packet(ctx: AgentContext, call: ProposedCall) -> DecisionPacket:
    args = LinkPatientArgs.model_validate(call.args)
    a: LinkAssessment = ctx.read(reconcile_review_link, args)
    facts: list[PacketFact] = []
    if a.referral is not None:
        facts.append(
            PacketFact(
                label="Referral patient",
                value=_person(a.referral.record),
                source=SourceRef(resource=a.referral.patient_ref, document="referral bundle"),
                phi=True,
            )
        )
    if a.match is not None and a.match.record is not None:
        facts.append(
            PacketFact(
                label="Proposed chart",
                value=_person(a.match.record),
                source=SourceRef(resource=f"Patient/{a.match.patient_id}", document="EHR"),
                phi=True,
            )
        )
        for member_id, member in zip(a.match.household_ids, a.match.household, strict=True):
            facts.append(
                PacketFact(
                    label="Same family, same address",
                    value=_person(member),
                    source=SourceRef(resource=f"Patient/{member_id}", document="EHR"),
                    phi=True,
                )
            )
    collision = a.match is not None and a.match.ambiguous
    checks = [
        PacketCheck(
            name="no other family member could be the patient",
            passed=not collision,
            detail="another chart of the family at this address fits the referral (twins, "
            "a parent and child of one name, or a duplicate chart)"
            if collision
            else "no collision",
        )
    ]
    return DecisionPacket(
        summary=f"Is the referral's patient EHR chart Patient/{args.patient_id}?",
        facts=facts,
        checks=checks,
        recommendation="none",
        recommendation_text="Check the referral's identifiers and date of birth against each "
        "chart; edit to link another chart.",
        confidence=0.5,
        on_approve=f"The referral's identifiers are added to Patient/{args.patient_id} "
        "(reversible, audited); the agent then reconciles the referral with that chart.",
        on_reject="No chart is linked and no field is changed; the referral stays unmatched "
        "for a person.",
    )


def _invoice_packet(ctx: AgentContext, call: ProposedCall) -> DecisionPacket:
    args = ApproveInvoiceArgs.model_validate(call.args)
    a: ApprovalAssessment = ctx.read(reconcile_review_invoice, args)
    invoice = f"Invoice {args.invoice_number}"
    check = a.check
    facts = [
        PacketFact(
            label="Invoice", value=args.invoice_number, source=SourceRef(resource=f"ERP {invoice}")
        ),
        PacketFact(
            label="Tolerances applied",
            value=f"{args.price_pct}% or {args.price_abs}",
            source=SourceRef(resource="policy pack", field="settings.reconciler.tolerances"),
        ),
    ]
    checks: list[PacketCheck] = []
    if check is not None:
        facts += [
            PacketFact(
                label="Vendor", value=check.vendor, source=SourceRef(resource=f"ERP {invoice}")
            ),
            PacketFact(
                label="Purchase order",
                value=check.po_number or "(none)",
                source=SourceRef(resource=f"ERP {invoice}", field="po_number"),
            ),
            PacketFact(
                label="Amount billed",
                value=check.amount,
                source=SourceRef(resource=f"ERP {invoice}", field="lines"),
            ),
        ]
        for issue in check.exceptions:
            where = f" (line {issue.line}, {issue.sku})" if issue.line else ""
            figures = [
                text
                for text in (
                    f"expected {issue.expected}" if issue.expected else "",
                    f"invoiced {issue.actual}" if issue.actual else "",
                )
                if text and issue.kind != "duplicate_invoice"
            ]
            detail = issue.explanation + (f" ({', '.join(figures)})" if figures else "")
            checks.append(PacketCheck(name=f"{issue.kind}{where}", passed=False, detail=detail))
        if not check.exceptions:
            checks.append(
                PacketCheck(
                    name="three-way match", passed=True, detail="PO, receipt, invoice agree"
                )
            )
    duplicate = check is not None and "duplicate_invoice" in check.kinds
    return DecisionPacket(
        summary=f"Pay {invoice} despite its three-way-match exceptions?",
        facts=facts,
        checks=checks,
        missing=[] if check is not None else [f"{invoice} is not in the ERP"],
        recommendation="reject" if duplicate or check is None else "none",
        recommendation_text="This invoice number was already processed: likely a duplicate."
        if duplicate
        else "Check each exception against the PO and the receiving record.",
        confidence=0.9 if duplicate else 0.5,
        on_approve=f"The ERP approves {invoice} for payment (external: cannot be taken back).",
        on_reject=f"The agent puts {invoice} on hold in the ERP with your reason, for accounts "
        "payable to resolve with the vendor.",
    )


def reconcile_packet(
    ctx: AgentContext,
    call: ProposedCall,
    verdict: PolicyVerdict,
    facts: Mapping[str, FactValue],
) -> DecisionPacket:
    """The decision packet for a held reconciler call (a generic one for any other tool)."""
    builders = {
        "reconcile_fix_demographic": _fix_packet,
        "reconcile_fix_member_id": _member_packet,
        "reconcile_link_patient": _link_packet,
        "reconcile_approve_invoice": _invoice_packet,
    }
    builder = builders.get(call.tool)
    if builder is not None:
        try:
            return builder(ctx, call)
        except ReadDeniedError as exc:  # the pack grants the agent no read of that system
            return DecisionPacket(
                summary=f"{ctx.agent} proposes {call.tool}; the records behind it could not be "
                "read for this packet",
                recommendation_text=exc.message,
                checks=[PacketCheck(name="records read", passed=False, detail=exc.message)],
                on_approve=f"{call.tool} runs with the arguments shown",
                on_reject="the call is not made; the agent is told why",
            )
    return DecisionPacket(
        summary=f"{ctx.agent} proposes {call.tool}",
        recommendation_text=call.why,
        on_approve=f"{call.tool} runs with the arguments shown",
        on_reject="the call is not made; the agent is told why",
    )
