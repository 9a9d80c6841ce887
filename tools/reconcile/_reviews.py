"""Read tools for the reconciler's decision packets: each re-derives, from the case and the
connectors, the assessment a proposed write is judged on (``_assess``), so that the reads a
packet shows a reviewer go through the gate's grant check and into the audit trail
(``carebound.engine.reads``). They return the assessment objects themselves: packets only.
"""

from __future__ import annotations

from carebound.tools._spec import ToolContext, tool
from carebound.tools.reconcile._assess import (
    ApprovalAssessment,
    FixAssessment,
    LinkAssessment,
    MemberIdAssessment,
    assess_approval,
    assess_fix,
    assess_link,
    assess_member_id,
)
from carebound.tools.reconcile._tools import (
    ApproveInvoiceArgs,
    FixDemographicArgs,
    FixMemberIdArgs,
    LinkPatientArgs,
)


@tool(scope="ehr:Patient.read", effect="read", phi={"demographics"}, public=("patient_id", "field"))
def reconcile_review_fix(ctx: ToolContext, args: FixDemographicArgs) -> FixAssessment:
    """The chart, the referral and the rule's value behind a proposed demographic fix."""
    return assess_fix(ctx.connectors, ctx.case, args.patient_id, args.field, args.value)


@tool(scope="payer:Coverage.read", effect="read", phi={"coverage"}, public=("coverage_id",))
def reconcile_review_member_id(ctx: ToolContext, args: FixMemberIdArgs) -> MemberIdAssessment:
    """The EHR Coverage and what the payer says of a proposed member id."""
    return assess_member_id(ctx.connectors, ctx.case, args.coverage_id, args.value)


@tool(scope="ehr:Patient.read", effect="read", phi={"demographics"}, public=("patient_id",))
def reconcile_review_link(ctx: ToolContext, args: LinkPatientArgs) -> LinkAssessment:
    """The referral's patient and the chart a proposed link would join."""
    return assess_link(ctx.connectors, ctx.case, args.patient_id)


@tool(scope="erp:Invoice.read", effect="read", public=("invoice_number",))
def reconcile_review_invoice(ctx: ToolContext, args: ApproveInvoiceArgs) -> ApprovalAssessment:
    """The invoice, its purchase order and receipts behind a proposed approval."""
    return assess_approval(ctx.connectors, args.invoice_number, args.tolerances())


REVIEW_TOOLS = (
    reconcile_review_fix,
    reconcile_review_member_id,
    reconcile_review_link,
    reconcile_review_invoice,
)
"""The packets' read tools (not proposed by planners)."""
