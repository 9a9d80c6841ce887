"""carebound.agents.reconcile: deterministic reconciliation rules, no I/O.

Demographics: ``compare_records`` classifies each disagreement between two records of one person
as low risk (fixed automatically, with the value to write) or high risk (held for a person);
``check_record`` finds single-record failures; ``identity_score`` weighs agreement the way the
HL7 Identity Matching IG weighs identity attributes.

Back office: ``three_way_match`` checks an invoice against its purchase order and goods receipt.
"""

from ._compare import PAYER_SOURCE, check_record, compare_records
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
    "check_record",
    "compare_records",
    "identity_score",
    "npi_is_valid",
    "three_way_match",
]
