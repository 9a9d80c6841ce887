"""missing_documents: which requirements a referral case does not yet meet, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Literal

from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import BaseModel, ConfigDict, Field

from carebound.domain.coverage import case_coverage
from carebound.fhir import ReferralCase, document_date, document_loinc_codes

from ._classify import CLASSIFY_MIN_CONFIDENCE, Classification
from ._requirements import DocumentRequirement

Problem = Literal[
    "absent", "stale", "undated", "unconfirmed", "inactive", "not-in-force", "no-reference-date"
]


class MissingItem(BaseModel):
    """A requirement the case does not meet."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    kind: Literal["document", "coverage", "prior_auth"]
    """The requirement's kind."""
    code: str
    """The requirement's code (a LOINC code for documents)."""
    display: str
    """The requirement's name."""
    problem: Problem
    """``absent``: nothing matches. ``stale``: the newest match is older than allowed.
    ``undated``: matches exist but none has a date. ``unconfirmed``: only untyped documents
    classified below the confidence threshold match. ``inactive``: Coverage exists but none is
    active. ``not-in-force``: none is in force on the date of service (its period, or the
    payer's eligibility answer). ``no-reference-date``: the ServiceRequest has no authoredOn
    to measure age from."""
    reason: str
    """The problem in words, e.g. ``stale: dated 2026-01-02, more than 90 days before authoredOn
    2026-06-01``."""
    related: list[str] = Field(default_factory=list)
    """Keys (``ReferralCase.document_key``) or Bundle paths of the resources that came close."""


def missing_documents(
    case: ReferralCase,
    requirements: Sequence[DocumentRequirement],
    *,
    classified: Mapping[str, Classification] | None = None,
    min_confidence: float = CLASSIFY_MIN_CONFIDENCE,
) -> list[MissingItem]:
    """The requirements that apply to ``case`` and are not met, in requirement order.

    Args:
        case: the referral.
        requirements: from the policy pack (or ``DEFAULT_REQUIREMENTS``).
        classified: classifications of untyped documents, by ``case.document_key(doc)``. A
            document with a LOINC type is matched by that type only; an untyped one only through
            its classification, at or above ``min_confidence``.
        min_confidence: the classification threshold.

    Documents with status ``entered-in-error`` never count. A document's date is
    ``document_date`` (``DocumentReference.date``, else ``context.period``).
    """
    found = classified or {}
    missing: list[MissingItem] = []
    for requirement in requirements:
        if not requirement_applies(requirement, case):
            continue
        if requirement.kind == "coverage":
            item = _check_coverage(requirement, case)
        elif requirement.kind == "prior_auth":
            item = _check_prior_auth(requirement, case)
        else:
            item = _check_document(requirement, case, found, min_confidence)
        if item is not None:
            missing.append(item)
    return missing


def requirement_applies(requirement: DocumentRequirement, case: ReferralCase) -> bool:
    """Whether a requirement applies to the case: its specialty and payer filters match, and it
    is always required or the case needs authorization."""
    if requirement.specialties is not None:
        wanted = {s.casefold() for s in requirement.specialties}
        if case.specialty is None or case.specialty.casefold() not in wanted:
            return False
    if requirement.payers is not None and not set(requirement.payers) & set(case.payer_ids):
        return False
    return requirement.when == "always" or case.authorization_required


def _item(
    requirement: DocumentRequirement, problem: Problem, reason: str, related: list[str]
) -> MissingItem:
    return MissingItem(
        kind=requirement.kind,
        code=requirement.code,
        display=requirement.display,
        problem=problem,
        reason=reason,
        related=related,
    )


def _check_coverage(requirement: DocumentRequirement, case: ReferralCase) -> MissingItem | None:
    if not case.coverage:
        return _item(requirement, "absent", "absent: no Coverage for the patient", [])
    # In force = active AND a period covering the date of service AND no eligibility answer
    # saying otherwise (carebound.domain.coverage.coverage_in_force), not status alone.
    verdicts = case_coverage(case)
    if any(v.in_force for v in verdicts):
        return None
    paths = [case.path_of(c) or c.id or "Coverage" for c in case.coverage]
    only_status = all(v.problems == ["not_active"] for v in verdicts)
    if only_status:
        statuses = ", ".join(
            f"{p} is {c.status}" for p, c in zip(paths, case.coverage, strict=True)
        )
        return _item(requirement, "inactive", f"inactive: no active Coverage ({statuses})", paths)
    reasons = "; ".join(v.explanation for v in verdicts)
    return _item(requirement, "not-in-force", f"not in force: {reasons}", paths)


def _check_prior_auth(requirement: DocumentRequirement, case: ReferralCase) -> MissingItem | None:
    if case.pre_auth_refs:
        return None
    sources = [
        case.path_of(r) or r.id or "CoverageEligibilityResponse"
        for r in case.authorization_sources()
    ]
    why = f"authorization required by {', '.join(sources)} and " if sources else ""
    return _item(
        requirement,
        "absent",
        f"absent: {why}no ClaimResponse with a preAuthRef",
        sources,
    )


def _check_document(
    requirement: DocumentRequirement,
    case: ReferralCase,
    classified: Mapping[str, Classification],
    min_confidence: float,
) -> MissingItem | None:
    matches: list[DocumentReference] = []
    unconfirmed: list[tuple[str, Classification]] = []
    for doc in case.documents:
        if doc.status == "entered-in-error":
            continue
        codes = document_loinc_codes(doc)
        if codes:
            if requirement.code in codes:
                matches.append(doc)
            continue
        key = case.document_key(doc)
        result = classified.get(key)
        if result is None or result.code != requirement.code:
            continue
        if result.confidence >= min_confidence:
            matches.append(doc)
        else:
            unconfirmed.append((key, result))

    name = f"{requirement.display} ({requirement.code})"
    if not matches:
        if unconfirmed:
            key, result = unconfirmed[0]
            return _item(
                requirement,
                "unconfirmed",
                f"unconfirmed: untyped document {key} reads as {name} with confidence "
                f"{result.confidence:.2f}, below {min_confidence:.2f}: a person must confirm it",
                [k for k, _ in unconfirmed],
            )
        return _item(requirement, "absent", f"absent: no {name}", [])

    keys = [case.document_key(d) for d in matches]
    if requirement.max_age_days is None:
        return None
    if case.authored_on is None:
        return _item(
            requirement,
            "no-reference-date",
            f"no-reference-date: {name} is present but the ServiceRequest has no authoredOn "
            f"to check its age (at most {requirement.max_age_days} days) against",
            keys,
        )
    dates = [d for d in (document_date(doc) for doc in matches) if d is not None]
    if not dates:
        return _item(
            requirement,
            "undated",
            f"undated: {name} is present but has no date (DocumentReference.date or "
            "context.period)",
            keys,
        )
    newest: date = max(dates)
    if (case.authored_on - newest).days <= requirement.max_age_days:
        return None
    return _item(
        requirement,
        "stale",
        f"stale: dated {newest.isoformat()}, more than {requirement.max_age_days} days before "
        f"authoredOn {case.authored_on.isoformat()}",
        keys,
    )
