"""Trusted assessments of the reconciler's proposed writes, from the run's own data.

The hold policy decides on facts, and facts must never come from the planner. Each assessment
here re-reads the case, the EHR, the payer and the ERP, and re-derives what the proposed write
would do and how risky it is: a demographic fix is low risk only when the referral and the EHR
chart differ on that field in a low-risk way AND the value proposed is exactly the rule's
normalised value. The decision packets show the same assessments to the reviewer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from carebound._errors import CareboundError
from carebound.domain.identity import Mismatch, PersonRecord
from carebound.domain.three_way import MatchTolerances
from carebound.tools._spec import FactValue
from carebound.tools.connectors import Connectors, ResourceNotFoundError, SystemUnavailableError
from carebound.tools.reconcile._erp import InvoiceCheck, check_invoice
from carebound.tools.reconcile._records import (
    EHR,
    PAYER,
    CaseReferral,
    EhrMatch,
    case_referral,
    ehr_record,
    field_mismatch,
    field_value,
    find_ehr_patient,
    payer_view,
    with_field,
)

Risk = Literal["low", "high"]
ValueSource = Literal["rule", "referral", "other"]

MAX_PRICE_PCT = Decimal("3")
"""Largest price tolerance (percent) an invoice approval may apply without billing deciding."""
MAX_PRICE_ABS = Decimal("5.00")
"""Largest absolute price tolerance an invoice approval may apply without billing deciding."""

_READ_ERRORS = (CareboundError, LookupError, ValueError, ValidationError)


@dataclass(frozen=True)
class FixAssessment:
    """What writing ``value`` into ``field`` of an EHR chart would do."""

    patient_id: str
    field: str
    value: str
    patient_found: bool = False
    patient_matched: bool = False
    """The chart is the one the referral matches, unambiguously."""
    method: str | None = None
    current: str | None = None
    """The chart's value now."""
    referral_value: str | None = None
    referral_ref: str | None = None
    """The referral's Patient in the case."""
    mismatch: Mismatch | None = None
    """How the referral and the chart differ on the field (None: they agree)."""
    change: Mismatch | None = None
    """How ``value`` differs from the chart's value (what the write changes)."""
    value_source: ValueSource = "other"
    error: str | None = None

    @property
    def risk(self) -> Risk:
        """Low only for the rule's own normalised value of a low-risk difference."""
        m = self.mismatch
        if m is not None and m.risk == "low" and m.proposed == self.value and not self.error:
            return "low"
        return "high"

    def facts(self) -> dict[str, FactValue]:
        """The facts the hold policy decides on."""
        return {
            "patient_matched": self.patient_matched,
            "mismatch_field": self.field,
            "mismatch_kind": self.mismatch.kind if self.mismatch else "none",
            "change_kind": self.change.kind if self.change else "none",
            "mismatch_risk": self.risk,
            "value_source": self.value_source,
        }


def _referral_and_match(
    connectors: Connectors, case: Mapping[str, Any]
) -> tuple[CaseReferral, EhrMatch]:
    referral = case_referral(case)
    return referral, find_ehr_patient(connectors.ehr, referral)


def assess_fix(
    connectors: Connectors, case: Mapping[str, Any], patient_id: str, field: str, value: str
) -> FixAssessment:
    """Assess a demographic fix from the case and the EHR as they are now."""
    base = FixAssessment(patient_id=patient_id, field=field, value=value)
    try:
        referral, match = _referral_and_match(connectors, case)
        try:
            patient = connectors.ehr.read("Patient", patient_id)
        except ResourceNotFoundError:
            return replace(base, error=f"no EHR Patient/{patient_id}")
        current, _ = ehr_record(connectors.ehr, patient, requester_id=referral.requester_id)
        mismatch = field_mismatch(referral.record, current, field)
        proposed = with_field(current, field, value)
        change = field_mismatch(proposed.model_copy(update={"source": "proposed"}), current, field)
    except SystemUnavailableError:
        raise  # a system down says nothing about the call: the engine waits for it
    except _READ_ERRORS as exc:
        return replace(base, error=str(exc)[:200])
    referral_value = field_value(referral.record, field)
    source: ValueSource = "other"
    if mismatch is not None and mismatch.proposed == value:
        source = "rule"
    elif referral_value == value:
        source = "referral"
    return FixAssessment(
        patient_id=patient_id,
        field=field,
        value=value,
        patient_found=True,
        patient_matched=match.patient_id == patient_id and not match.ambiguous,
        method=match.method,
        current=field_value(current, field),
        referral_value=referral_value,
        referral_ref=referral.patient_ref,
        mismatch=mismatch,
        change=change,
        value_source=source,
    )


@dataclass(frozen=True)
class MemberIdAssessment:
    """What writing ``value`` as the member id of an EHR Coverage would do."""

    coverage_id: str
    value: str
    coverage_found: bool = False
    patient_id: str | None = None
    """The Coverage's beneficiary in the EHR."""
    patient_matched: bool = False
    current: str | None = None
    referral_value: str | None = None
    payer_confirms: bool = False
    """The payer holds a Coverage under exactly this member id."""
    mismatch: Mismatch | None = None
    """How the chart's member id differs from ``value`` (None: equal)."""
    error: str | None = None

    @property
    def risk(self) -> Risk:
        """Low only for a punctuation or prefix fix to the spelling the payer confirms."""
        m = self.mismatch
        low = m is not None and m.risk == "low" and m.proposed == self.value
        return "low" if low and self.payer_confirms and not self.error else "high"

    def facts(self) -> dict[str, FactValue]:
        """The facts the hold policy decides on."""
        return {
            "patient_matched": self.patient_matched,
            "mismatch_field": "identifier.member_id",
            "mismatch_kind": self.mismatch.kind if self.mismatch else "none",
            "mismatch_risk": self.risk,
            "payer_confirms": self.payer_confirms,
        }


def assess_member_id(
    connectors: Connectors, case: Mapping[str, Any], coverage_id: str, value: str
) -> MemberIdAssessment:
    """Assess a member-id fix of an EHR Coverage against the payer."""
    base = MemberIdAssessment(coverage_id=coverage_id, value=value)
    try:
        referral, match = _referral_and_match(connectors, case)
        try:
            coverage = connectors.ehr.read("Coverage", coverage_id)
        except ResourceNotFoundError:
            return replace(base, error=f"no EHR Coverage/{coverage_id}")
        beneficiary = str((coverage.get("beneficiary") or {}).get("reference", ""))
        patient_id = beneficiary.rsplit("/", 1)[-1] if beneficiary else None
        payer = payer_view(connectors.payer, [value])
    except SystemUnavailableError:
        raise  # a system down says nothing about the call: the engine waits for it
    except _READ_ERRORS as exc:
        return replace(base, error=str(exc)[:200])
    current = coverage.get("subscriberId")
    confirms = payer.record is not None and payer.record.member_id == value
    mismatch = None
    if isinstance(current, str) and current:
        mismatch = field_mismatch(
            PersonRecord(source=EHR, member_id=current),
            PersonRecord(source=PAYER, member_id=value),
            "identifier.member_id",
        )
    return MemberIdAssessment(
        coverage_id=coverage_id,
        value=value,
        coverage_found=True,
        patient_id=patient_id,
        patient_matched=patient_id is not None
        and match.patient_id == patient_id
        and not match.ambiguous,
        current=current if isinstance(current, str) else None,
        referral_value=referral.record.member_id,
        payer_confirms=confirms,
        mismatch=mismatch,
    )


@dataclass(frozen=True)
class LinkAssessment:
    """Who the referral's patient could be, for a proposed link to ``patient_id``."""

    patient_id: str
    referral: CaseReferral | None = None
    match: EhrMatch | None = None
    error: str | None = None

    def facts(self) -> dict[str, FactValue]:
        """The facts the hold policy decides on."""
        match = self.match
        known = () if match is None else (*match.candidates, *match.household_ids)
        return {
            "patient_found": self.patient_id in known,
            "best_match": match is not None and match.patient_id == self.patient_id,
            "family_collision": match is not None and match.ambiguous,
            "candidates": len(match.candidates) if match else 0,
        }


def assess_link(connectors: Connectors, case: Mapping[str, Any], patient_id: str) -> LinkAssessment:
    """Assess linking the referral's patient to EHR chart ``patient_id``."""
    try:
        referral, match = _referral_and_match(connectors, case)
    except SystemUnavailableError:
        raise  # a system down says nothing about the call: the engine waits for it
    except _READ_ERRORS as exc:
        return LinkAssessment(patient_id=patient_id, error=str(exc)[:200])
    return LinkAssessment(patient_id=patient_id, referral=referral, match=match)


@dataclass(frozen=True)
class ApprovalAssessment:
    """An invoice's match, re-computed from the ERP at the time of the proposed approval."""

    invoice_number: str
    tolerances: MatchTolerances
    check: InvoiceCheck | None = None
    error: str | None = None

    @property
    def within_ceiling(self) -> bool:
        """The tolerances applied are no looser than the tools accept without billing."""
        return (
            self.tolerances.price_pct <= MAX_PRICE_PCT
            and self.tolerances.price_abs <= MAX_PRICE_ABS
        )

    def facts(self) -> dict[str, FactValue]:
        """The facts the hold policy decides on."""
        check = self.check
        return {
            "invoice_found": check is not None,
            "match_status": check.status if check else "unknown",
            "exception_kinds": ",".join(check.kinds) if check else "",
            "amount": check.amount if check else None,
            "erp_status": check.erp_status if check else "unknown",
            "tolerance_within_ceiling": self.within_ceiling,
        }


def assess_approval(
    connectors: Connectors, invoice_number: str, tolerances: MatchTolerances
) -> ApprovalAssessment:
    """Re-run the three-way match of ``invoice_number`` from the ERP."""
    try:
        check = check_invoice(connectors.erp, invoice_number, tolerances)
    except SystemUnavailableError:
        raise  # a system down says nothing about the call: the engine waits for it
    except _READ_ERRORS as exc:
        return ApprovalAssessment(invoice_number, tolerances, error=str(exc)[:200])
    return ApprovalAssessment(invoice_number, tolerances, check=check)
