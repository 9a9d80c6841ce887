"""Assessing a referral against the pack: the document requirements of
``settings.referral_chaser``, the acceptance criteria of ``settings.packet_builder``, DOC-2's
instruction check, and the payer's view of coverage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import (
    AgentContext,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    ChaseSettings,
    CitedRequirement,
    PacketSettings,
)
from carebound.agents.reconciler._coverage import NOT_VERIFIED
from carebound.approvals import PacketCheck
from carebound.domain.coverage import case_coverage
from carebound.domain.documents import (
    Classification,
    MissingItem,
    detect_injection,
    document_texts,
    missing_documents,
)
from carebound.domain.documents._missing import requirement_applies
from carebound.fhir import ReferralCase, concept_label, document_date, document_loinc_codes
from carebound.tools.reconcile import ReadCoverageArgs, reconcile_read_coverage
from carebound.tools.referral import (
    classify_resource,
    is_confident,
    is_received,
    parse_document,
    reference_of,
)

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
        if not requirement_applies(requirement, evidence):
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
    """Ask the payer (through the audited ``reconcile_read_coverage`` read) whether it holds the
    referral's member with coverage in force on the date of service."""
    member_id = case.demographics().member_id
    if not member_id:
        return None, f"{NOT_VERIFIED}: the referral carries no member id to ask about"
    try:
        answer = ctx.read(reconcile_read_coverage, ReadCoverageArgs(member_ids=[member_id]))
    except (CareboundError, LookupError, ValueError) as exc:
        return None, f"{NOT_VERIFIED}: the payer could not be read ({type(exc).__name__})"
    if not answer["connected"]:
        return None, f"{NOT_VERIFIED}: no payer is connected"
    if not answer["found"]:
        return False, "the payer answered: it has no coverage under the member id on file"
    verdict = answer["in_force"]
    if verdict is not None and not verdict["in_force"]:
        return False, f"the payer answered: {verdict['explanation']}"
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
