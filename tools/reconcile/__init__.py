"""carebound.tools.reconcile: the reconciler's tools, and the I/O-side checks behind them.

Every tool name starts with ``reconcile_`` so agents that compose the reconciler's planner
(referral intake) can hold these tools beside their own. Writes are declared ``reversible`` (EHR)
or ``external`` (ERP) and go through the effect ledger; their ``facts`` re-derive, from the case
and the connectors, everything the hold policy decides on.

- ``_records``: the records to compare (referral, EHR chart, payer member record) as
  ``PersonRecord`` views, and the writes a fix makes;
- ``_coverage``: coverage in force, from the referral and the payer;
- ``_erp``: an invoice checked against its PO and receipt as the ERP holds them;
- ``_assess``: the trusted facts each write is judged on;
- ``_tools``: the tools themselves (argument models, ``RECONCILE_TOOLS``);
- ``_reviews``: read tools the decision packets read the assessments through (audited).

The rules themselves (identity matching, coverage, three-way match) are pure and live in
``carebound.domain``.
"""

from ._assess import (
    ApprovalAssessment,
    FixAssessment,
    LinkAssessment,
    MemberIdAssessment,
    assess_approval,
    assess_fix,
    assess_link,
    assess_member_id,
)
from ._erp import InvoiceCheck, InvoiceIssue
from ._records import PATIENT_FIELDS, case_referral, field_value
from ._reviews import (
    REVIEW_TOOLS,
    reconcile_review_fix,
    reconcile_review_invoice,
    reconcile_review_link,
    reconcile_review_member_id,
)
from ._tools import (
    RECONCILE_TOOLS,
    ApproveInvoiceArgs,
    FindPatientArgs,
    FixDemographicArgs,
    FixMemberIdArgs,
    HoldInvoiceArgs,
    LinkPatientArgs,
    MatchInvoicesArgs,
    ReadCoverageArgs,
    reconcile_approve_invoice,
    reconcile_find_patient,
    reconcile_fix_demographic,
    reconcile_fix_member_id,
    reconcile_hold_invoice,
    reconcile_link_patient,
    reconcile_match_invoices,
    reconcile_read_coverage,
)

__all__ = [
    "PATIENT_FIELDS",
    "RECONCILE_TOOLS",
    "REVIEW_TOOLS",
    "ApprovalAssessment",
    "ApproveInvoiceArgs",
    "FindPatientArgs",
    "FixAssessment",
    "FixDemographicArgs",
    "FixMemberIdArgs",
    "HoldInvoiceArgs",
    "InvoiceCheck",
    "InvoiceIssue",
    "LinkAssessment",
    "LinkPatientArgs",
    "MatchInvoicesArgs",
    "MemberIdAssessment",
    "ReadCoverageArgs",
    "assess_approval",
    "assess_fix",
    "assess_link",
    "assess_member_id",
    "case_referral",
    "field_value",
    "reconcile_approve_invoice",
    "reconcile_find_patient",
    "reconcile_fix_demographic",
    "reconcile_fix_member_id",
    "reconcile_hold_invoice",
    "reconcile_link_patient",
    "reconcile_match_invoices",
    "reconcile_read_coverage",
    "reconcile_review_fix",
    "reconcile_review_invoice",
    "reconcile_review_link",
    "reconcile_review_member_id",
]
