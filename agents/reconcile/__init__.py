"""carebound.agents.reconcile: deterministic reconciliation rules, no I/O.

Demographics: ``compare_records`` classifies each disagreement between two records of one person
as low risk (fixed automatically, with the value to write) or high risk (held for a person);
``check_record`` finds single-record failures; ``identity_score`` weighs agreement the way the
HL7 Identity Matching IG weighs identity attributes.

Coverage: ``coverage_in_force`` says whether a Coverage is in force on the date of service
(active, its period covering that date, and the payer's eligibility answer when there is one).

Back office: ``three_way_match`` checks an invoice against its purchase order and goods receipt.
"""

from ._compare import PAYER_SOURCE, check_record, compare_records
from ._coverage import (
    CoverageProblem,
    CoverageTerms,
    CoverageVerdict,
    case_coverage,
    coverage_in_force,
    coverage_terms,
    eligibility_inforce,
    service_date,
)
from ._identifiers import NPI_PREFIX, npi_is_valid
from ._identity import IDENTITY_WEIGHTS, IdentityAttribute, agreeing_attributes, identity_score
from ._models import KIND_RISK, Mismatch, MismatchField, MismatchKind, PersonRecord, Risk
from ._three_way import (
    ExceptionKind,
    GoodsReceipt,
    Invoice,
    InvoiceLine,
    MatchException,
    MatchInputError,
    MatchResult,
    MatchTolerances,
    POLine,
    PurchaseOrder,
    ReceiptLine,
    three_way_match,
)

__all__ = [
    "IDENTITY_WEIGHTS",
    "KIND_RISK",
    "NPI_PREFIX",
    "PAYER_SOURCE",
    "CoverageProblem",
    "CoverageTerms",
    "CoverageVerdict",
    "ExceptionKind",
    "GoodsReceipt",
    "IdentityAttribute",
    "Invoice",
    "InvoiceLine",
    "MatchException",
    "MatchInputError",
    "MatchResult",
    "MatchTolerances",
    "Mismatch",
    "MismatchField",
    "MismatchKind",
    "POLine",
    "PersonRecord",
    "PurchaseOrder",
    "ReceiptLine",
    "Risk",
    "agreeing_attributes",
    "case_coverage",
    "check_record",
    "compare_records",
    "coverage_in_force",
    "coverage_terms",
    "eligibility_inforce",
    "identity_score",
    "npi_is_valid",
    "service_date",
    "three_way_match",
]
