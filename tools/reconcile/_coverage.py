"""Coverage in force, for the reconciler's reads: the referral's Coverage judged from the case,
the payer's judged from its own answer, both on the order's date of service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carebound.domain.coverage import (
    CoverageVerdict,
    case_coverage,
    coverage_in_force,
    coverage_terms,
    service_date,
)
from carebound.fhir import ReferralCase, referral_case_of
from carebound.tools.reconcile._records import PayerView

PAYER_COVERAGE = "the payer's Coverage"
"""How the payer's Coverage is named in explanations."""


def _case(case: Mapping[str, Any]) -> ReferralCase:
    return referral_case_of(case, source="case")


def referral_coverage(case: Mapping[str, Any]) -> list[CoverageVerdict]:
    """Whether each Coverage of the referral is in force on its order's date of service.

    Raises:
        FhirInputError: the case holds no referral ServiceRequest.
    """
    return case_coverage(_case(case))


def payer_coverage(case: Mapping[str, Any], view: PayerView) -> CoverageVerdict | None:
    """Whether the Coverage the payer answered with is in force on the referral's date of
    service (its status, period and eligibility answer); None when the payer gave none."""
    if view.coverage is None:
        return None
    referral = _case(case)
    on = service_date(referral.service_request_json)
    terms = coverage_terms(
        view.coverage, PAYER_COVERAGE, eligibility_inforce=view.eligibility_inforce
    )
    return coverage_in_force(terms, on)
