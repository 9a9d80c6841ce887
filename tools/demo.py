"""Tools of the demo agent: read the referral, fax a document request, fix a demographic.

They are small on purpose: the demo agent exists to exercise the gate (grants, holds,
decisions, the effect ledger) end to end, and to show how a service declares its own tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carebound.tools._spec import FactValue, ToolContext, tool


class ReadReferralArgs(BaseModel):
    """No arguments: the referral is the run's case."""

    model_config = ConfigDict(extra="forbid")


class SendRequestArgs(BaseModel):
    """Ask an office for a missing document."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="Fax number of the office.")
    document_code: str = Field(description="LOINC code of the document requested.")
    note: str = Field(default="", description="Text of the request.")


class UpdateFieldArgs(BaseModel):
    """Change one field of the patient's EHR record."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted FHIR path, e.g. 'name.0.given.0'.")
    value: str = Field(description="The new value.")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)[-10:]


def fax_numbers_on_file(case: Mapping[str, Any]) -> set[str]:
    """Fax numbers of the practitioners and organisations in a case bundle, as written."""
    found: set[str] = set()
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") not in ("Practitioner", "Organization", "PractitionerRole"):
            continue
        for telecom in resource.get("telecom", []) or []:
            if telecom.get("system") == "fax" and telecom.get("value"):
                found.add(str(telecom["value"]))
    return found


def _patient_id(case: Mapping[str, Any]) -> str:
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient":
            return str(resource.get("id", ""))
    raise LookupError("the case has no Patient")


def _recipient_facts(ctx: ToolContext, args: SendRequestArgs) -> dict[str, FactValue]:
    on_file = {_digits(number) for number in fax_numbers_on_file(ctx.case)}
    return {"recipient_on_file": _digits(args.to) in on_file}


@tool(scope="ehr:ServiceRequest.read", effect="read", phi={"referral"})
def read_referral(ctx: ToolContext, args: ReadReferralArgs) -> dict[str, Any]:
    """Read the referral: which resources the case holds, and the fax numbers on file."""
    kinds = sorted(
        {str((e.get("resource") or {}).get("resourceType")) for e in ctx.case.get("entry", [])}
    )
    return {"resources": kinds, "fax_on_file": sorted(fax_numbers_on_file(ctx.case))}


@tool(
    scope="outreach:fax.send",
    effect="external",
    phi={"contact"},
    public=("document_code", "note"),
    key=("to", "document_code"),
    constraints={"recipient": "to"},
    facts=_recipient_facts,
)
def send_document_request(ctx: ToolContext, args: SendRequestArgs) -> dict[str, Any]:
    """Fax the referring office a request for a missing document."""
    receipt = ctx.connectors.outreach.send(
        "fax",
        args.to,
        subject=f"Request for document {args.document_code}",
        body=args.note or f"Please send document {args.document_code} for this referral.",
        request_id=f"{ctx.run_id}:{args.document_code}",
        requested_codes=[args.document_code],
        idempotency_key=ctx.idempotency_key,
        now=ctx.now,
    )
    return dict(receipt.model_dump(mode="json"))


@tool(
    scope="ehr:Patient.write",
    effect="reversible",
    phi={"demographics"},
    public=("field",),
    key=("field", "value"),
    constraints={"field": "field"},
)
def update_patient_field(ctx: ToolContext, args: UpdateFieldArgs) -> dict[str, Any]:
    """Change one field of the patient's EHR record (before/after go to the effect record)."""
    patient_id = _patient_id(ctx.case)
    ctx.connectors.ehr.update_fields(
        "Patient", patient_id, {args.field: args.value}, idempotency_key=ctx.idempotency_key
    )
    return {"patient": f"Patient/{patient_id}", "field": args.field}
