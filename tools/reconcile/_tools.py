"""The reconciler's tools: read the records to compare, fix demographics, match invoices.

Every tool name starts with ``reconcile_`` so agents that compose the reconciler's planner
(referral intake) can hold these tools beside their own. Writes are declared ``reversible`` (EHR)
or ``external`` (ERP) and go through the effect ledger; their ``facts`` re-derive, from the case
and the connectors, everything the hold policy decides on (see ``_assess``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound.domain.identity._models import PatientField
from carebound.domain.three_way import MatchTolerances
from carebound.tools._spec import FactValue, ToolContext, ToolSpec, tool
from carebound.tools.connectors import VersionConflictError, version_of
from carebound.tools.reconcile._assess import (
    assess_approval,
    assess_fix,
    assess_link,
    assess_member_id,
)
from carebound.tools.reconcile._coverage import payer_coverage, referral_coverage
from carebound.tools.reconcile._erp import check_invoice
from carebound.tools.reconcile._records import (
    case_referral,
    ehr_record,
    field_value,
    find_ehr_patient,
    patient_changes,
    payer_view,
)

_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_GENDERS = ("male", "female", "other", "unknown")
_AUDIT_MAX = 200


def _short(value: object) -> str | None:
    return None if value is None else str(value)[:_AUDIT_MAX]


# --- arguments -----------------------------------------------------------------------------


class FindPatientArgs(BaseModel):
    """No arguments: the referral is the run's case."""

    model_config = ConfigDict(extra="forbid")


class ReadCoverageArgs(BaseModel):
    """Member ids to ask the payer about, in order of preference."""

    model_config = ConfigDict(extra="forbid")

    member_ids: list[str] = Field(min_length=1, max_length=4)


class FixDemographicArgs(BaseModel):
    """Write one demographic field of an EHR chart."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=_ID, description="The EHR Patient id.")
    field: PatientField = Field(description="The mismatch field to write.")
    value: str = Field(
        min_length=1,
        max_length=200,
        description="The new value as the mismatch reports it: given names space-separated, "
        "ISO date, a FHIR gender code, 'LINE[, LINE2], CITY, STATE' for an address.",
    )

    before: str | None = Field(
        default=None,
        max_length=200,
        description="The field's value on the chart when the fix was decided (as the "
        "comparison read it). If the chart holds something else by the time the fix is "
        "written, nothing is written and the fix is held again for a person.",
    )

    @model_validator(mode="after")
    def _value_fits_field(self) -> Self:
        if self.field == "birthDate":
            date.fromisoformat(self.value)
        elif self.field == "gender" and self.value not in _GENDERS:
            raise ValueError(f"gender must be one of {', '.join(_GENDERS)}")
        elif self.field == "address" and len([p for p in self.value.split(",") if p.strip()]) < 3:
            raise ValueError("an address is written 'LINE[, LINE2], CITY, STATE'")
        return self


class FixMemberIdArgs(BaseModel):
    """Write the member id of an EHR Coverage."""

    model_config = ConfigDict(extra="forbid")

    coverage_id: str = Field(pattern=_ID, description="The EHR Coverage id.")
    value: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\- ]{0,39}$", description="Member id.")


class LinkPatientArgs(BaseModel):
    """Link the referral's patient to one EHR chart."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field(pattern=_ID, description="The EHR Patient the referral is about.")


class ToleranceArgs(BaseModel):
    """The price tolerances of the three-way match (the pack's ``settings.reconciler``)."""

    model_config = ConfigDict(extra="forbid")

    price_pct: Decimal = Field(default=Decimal("2"), ge=0, le=100)
    price_abs: Decimal = Field(default=Decimal("1.00"), ge=0)

    def tolerances(self) -> MatchTolerances:
        """As the match's own model."""
        return MatchTolerances(price_pct=self.price_pct, price_abs=self.price_abs)


class MatchInvoicesArgs(ToleranceArgs):
    """Match every invoice the ERP has received and not yet processed."""


class ApproveInvoiceArgs(ToleranceArgs):
    """Approve one invoice for payment."""

    invoice_number: str = Field(min_length=1, max_length=64)


class HoldInvoiceArgs(BaseModel):
    """Put one invoice on hold in the ERP, saying why."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


# --- facts and audit detail ----------------------------------------------------------------


def _fix_facts(ctx: ToolContext, args: FixDemographicArgs) -> dict[str, FactValue]:
    return assess_fix(ctx.connectors, ctx.case, args.patient_id, args.field, args.value).facts()


def _member_facts(ctx: ToolContext, args: FixMemberIdArgs) -> dict[str, FactValue]:
    return assess_member_id(ctx.connectors, ctx.case, args.coverage_id, args.value).facts()


def _link_facts(ctx: ToolContext, args: LinkPatientArgs) -> dict[str, FactValue]:
    return assess_link(ctx.connectors, ctx.case, args.patient_id).facts()


def _approve_facts(ctx: ToolContext, args: ApproveInvoiceArgs) -> dict[str, FactValue]:
    return assess_approval(ctx.connectors, args.invoice_number, args.tolerances()).facts()


def _change_detail(args: Any, output: Any) -> dict[str, FactValue]:
    return {
        "target": _short(output.get("target")),
        "field": _short(output.get("field")),
        "before": _short(output.get("before")),
        "after": _short(output.get("after")),
    }


def _invoice_detail(args: Any, output: Any) -> dict[str, FactValue]:
    return {
        "invoice": _short(output.get("invoice_number")),
        "before": _short(output.get("before")),
        "after": _short(output.get("status")),
        "hold_reason": _short(output.get("hold_reason")),
    }


# --- reads ---------------------------------------------------------------------------------


@tool(scope="ehr:Patient.read", effect="read", phi={"demographics", "coverage"})
def reconcile_find_patient(ctx: ToolContext, args: FindPatientArgs) -> dict[str, Any]:
    """Find the referral's patient in the EHR and read both records for comparison: the chart
    (with its Coverage), how it was found, the other charts of the same family name, and
    whether the referral's Coverage is in force on the date of service."""
    referral = case_referral(ctx.case)
    match = find_ehr_patient(ctx.connectors.ehr, referral)
    return {
        "referral_patient": referral.patient_ref,
        "referral": referral.record.model_dump(mode="json"),
        "has_identifiers": bool(referral.identifiers),
        "patient_id": match.patient_id,
        "method": match.method,
        "record": match.record.model_dump(mode="json") if match.record else None,
        "coverage_id": match.coverage_id,
        "candidates": list(match.candidates),
        "household": [r.model_dump(mode="json") for r in match.household],
        "household_ids": list(match.household_ids),
        "ambiguous": match.ambiguous,
        "coverage": [v.model_dump(mode="json") for v in referral_coverage(ctx.case)],
    }


@tool(scope="payer:Coverage.read", effect="read", phi={"coverage"})
def reconcile_read_coverage(ctx: ToolContext, args: ReadCoverageArgs) -> dict[str, Any]:
    """Ask the payer for the Coverage of the first member id it knows, the member's
    demographics as the payer holds them, and whether that Coverage is in force on the date of
    service. ``connected`` is false when there is no payer to ask."""
    view = payer_view(ctx.connectors.payer, args.member_ids)
    verdict = payer_coverage(ctx.case, view)
    return {
        "connected": view.connected,
        "in_force": verdict.model_dump(mode="json") if verdict else None,
        "found": view.record is not None,
        "member_id": view.member_id,
        "coverage_id": view.coverage_id,
        "record": view.record.model_dump(mode="json") if view.record else None,
    }


@tool(scope="erp:Invoice.read", effect="read", phi=set())
def reconcile_match_invoices(ctx: ToolContext, args: MatchInvoicesArgs) -> dict[str, Any]:
    """Three-way match every invoice the ERP has received (and not yet approved or held)
    against its purchase order and goods receipts."""
    erp = ctx.connectors.erp
    checks = []
    for invoice in erp.invoices():
        if invoice.status != "received":
            continue
        check = check_invoice(erp, invoice.invoice_number, args.tolerances())
        if check is not None:
            checks.append(check.model_dump(mode="json"))
    return {"invoices": checks}


# --- EHR writes ----------------------------------------------------------------------------


@tool(
    scope="ehr:Patient.write",
    effect="reversible",
    phi={"demographics"},
    public=("patient_id", "field"),
    key=("patient_id", "field", "value", "before"),
    constraints={"field": "field"},
    facts=_fix_facts,
    audit_detail=_change_detail,
)
def reconcile_fix_demographic(ctx: ToolContext, args: FixDemographicArgs) -> dict[str, Any]:
    """Write one demographic field of the patient's EHR chart (the element the comparison
    read); before and after go to the effect record and the audit trail."""
    ehr = ctx.connectors.ehr
    patient = ehr.read("Patient", args.patient_id)
    before, _ = ehr_record(ehr, patient)
    now = field_value(before, args.field)
    if args.before is not None and now not in (args.before, args.value):
        raise _chart_changed(args, now)
    changes = patient_changes(patient, args.field, args.value)
    version = version_of(patient)
    try:
        updated = ehr.update_fields(
            "Patient",
            args.patient_id,
            changes,
            idempotency_key=ctx.idempotency_key,
            **({"expected_version": version} if version is not None else {}),
        )
    except VersionConflictError:
        # Changed between our read and our write: decide again on what it holds now.
        again, _ = ehr_record(ehr, ehr.read("Patient", args.patient_id))
        raise _chart_changed(args, field_value(again, args.field)) from None
    after, _ = ehr_record(ehr, updated)
    return {
        "target": f"Patient/{args.patient_id}",
        "field": args.field,
        "before": field_value(before, args.field),
        "after": field_value(after, args.field),
        "paths": sorted(changes),
    }


def _chart_changed(args: FixDemographicArgs, now: str | None) -> VersionConflictError:
    """The chart no longer holds what the fix was decided on: hold again, on ``now``."""
    return VersionConflictError(
        f"Patient/{args.patient_id} {args.field} changed since the fix was decided; "
        "nothing was written",
        hint="a person decides again on the chart as it is now",
        reference=f"Patient/{args.patient_id}",
        expected=None,
        current=None,
        rebase={"before": now},
    )


@tool(
    scope="ehr:Coverage.write",
    effect="reversible",
    phi={"coverage"},
    public=("coverage_id",),
    key=("coverage_id", "value"),
    facts=_member_facts,
    audit_detail=_change_detail,
)
def reconcile_fix_member_id(ctx: ToolContext, args: FixMemberIdArgs) -> dict[str, Any]:
    """Write the insurance member id (Coverage.subscriberId) of the patient's EHR Coverage."""
    ehr = ctx.connectors.ehr
    before = ehr.read("Coverage", args.coverage_id).get("subscriberId")
    updated = ehr.update_fields(
        "Coverage",
        args.coverage_id,
        {"subscriberId": args.value},
        idempotency_key=ctx.idempotency_key,
    )
    return {
        "target": f"Coverage/{args.coverage_id}",
        "field": "identifier.member_id",
        "before": before,
        "after": updated.get("subscriberId"),
    }


@tool(
    scope="ehr:Patient.link",
    effect="reversible",
    phi={"demographics"},
    public=("patient_id",),
    key=("patient_id",),
    facts=_link_facts,
    audit_detail=_change_detail,
)
def reconcile_link_patient(ctx: ToolContext, args: LinkPatientArgs) -> dict[str, Any]:
    """Link the referral's patient to an EHR chart by adding the referral's patient
    identifiers to that chart, so this referral and later documents match it."""
    referral = case_referral(ctx.case)
    if not referral.identifiers:
        raise ValueError("the referral's patient carries no identifier to link with")
    ehr = ctx.connectors.ehr
    patient = ehr.read("Patient", args.patient_id)
    existing = list(patient.get("identifier") or [])
    known = {(i.get("system"), i.get("value")) for i in existing}
    new = [i for i in referral.identifiers if (i.get("system"), i["value"]) not in known]
    if new:
        ehr.update_fields(
            "Patient",
            args.patient_id,
            {f"identifier.{len(existing) + n}": ident for n, ident in enumerate(new)},
            idempotency_key=ctx.idempotency_key,
        )
    added = ", ".join(f"{i.get('system', '')}|{i['value']}" for i in new)
    return {
        "target": f"Patient/{args.patient_id}",
        "field": "identifier",
        "before": None,
        "after": added or "(already linked)",
        "referral_patient": referral.patient_ref,
    }


# --- ERP writes ----------------------------------------------------------------------------


@tool(
    scope="erp:Invoice.approve",
    effect="external",
    phi=set(),
    key=("invoice_number",),
    facts=_approve_facts,
    audit_detail=_invoice_detail,
)
def reconcile_approve_invoice(ctx: ToolContext, args: ApproveInvoiceArgs) -> dict[str, Any]:
    """Approve an invoice for payment in the ERP."""
    erp = ctx.connectors.erp
    before = erp.invoice(args.invoice_number)
    after = erp.approve_invoice(args.invoice_number, idempotency_key=ctx.idempotency_key)
    return {
        "invoice_number": after.invoice_number,
        "before": before.status if before else None,
        "status": after.status,
        "hold_reason": after.hold_reason,
    }


@tool(
    scope="erp:Invoice.hold",
    effect="external",
    phi=set(),
    key=("invoice_number",),
    audit_detail=_invoice_detail,
)
def reconcile_hold_invoice(ctx: ToolContext, args: HoldInvoiceArgs) -> dict[str, Any]:
    """Put an invoice on hold in the ERP with the reason, for accounts payable to work."""
    erp = ctx.connectors.erp
    before = erp.invoice(args.invoice_number)
    after = erp.hold_invoice(args.invoice_number, args.reason, idempotency_key=ctx.idempotency_key)
    return {
        "invoice_number": after.invoice_number,
        "before": before.status if before else None,
        "status": after.status,
        "hold_reason": after.hold_reason,
    }


RECONCILE_TOOLS: dict[str, ToolSpec[Any]] = {
    spec.name: spec
    for spec in (
        reconcile_find_patient,
        reconcile_read_coverage,
        reconcile_fix_demographic,
        reconcile_fix_member_id,
        reconcile_link_patient,
        reconcile_match_invoices,
        reconcile_approve_invoice,
        reconcile_hold_invoice,
    )
}
"""Every reconciler tool, by name."""
