"""A referral that came as an unstructured fax, drafted as FHIR and written only once confirmed.

``create_referral_from_fax`` carries a draft Patient and ServiceRequest (R4B, checked with
``fhir.resources``) that a chat model read from the fax (``carebound.assist``, task
``extract``). The policy holds every call of it for an intake coordinator (EXT-1), who compares
the draft with the fax and approves, edits or rejects it: nothing is written unconfirmed. Its
facts are recomputed from the stored fax, never taken from the caller: whether every drafted
value is written in the fax.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from carebound._errors import CareboundError
from carebound.domain.documents import is_written_in
from carebound.fhir import parse_resource
from carebound.tools._spec import FactValue, ToolContext, tool
from carebound.tools.referral._evidence import readable_text
from carebound.tools.referral._facts import document_for

_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


class ReferralDraftArgs(BaseModel):
    """Write the Patient and the ServiceRequest drafted from a faxed referral."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(pattern=_FHIR_ID, description="The fax (DocumentReference id).")
    patient: dict[str, Any] = Field(description="The draft Patient (FHIR R4B JSON).")
    service_request: dict[str, Any] = Field(
        description="The draft ServiceRequest (FHIR R4B JSON); its subject is the new Patient."
    )
    dropped: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Fields the model gave that the fax does not support (names only).",
    )

    @field_validator("patient")
    @classmethod
    def _a_patient(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(value, Patient, "patient")

    @field_validator("service_request")
    @classmethod
    def _an_order(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(value, ServiceRequest, "service_request")


def _checked(value: dict[str, Any], model: type[Any], field: str) -> dict[str, Any]:
    try:
        parse_resource(value, model, source=field)
    except CareboundError as exc:
        raise ValueError(exc.message) from None
    return value


def drafted_values(
    patient: Mapping[str, Any], order: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """(field, value) of every value a draft says that the fax must carry."""
    for name in patient.get("name", []) or []:
        if name.get("family"):
            yield "patient.name.family", str(name["family"])
        for given in name.get("given", []) or []:
            yield "patient.name.given", str(given)
    if patient.get("birthDate"):
        yield "patient.birthDate", str(patient["birthDate"])
    for ident in patient.get("identifier", []) or []:
        if ident.get("value"):
            yield "patient.identifier", str(ident["value"])
    for telecom in patient.get("telecom", []) or []:
        if telecom.get("value"):
            yield "patient.telecom", str(telecom["value"])
    if (order.get("code") or {}).get("text"):
        yield "service_request.code", str(order["code"]["text"])
    for reason in order.get("reasonCode", []) or []:
        if reason.get("text"):
            yield "service_request.reasonCode", str(reason["text"])
    requester = (order.get("requester") or {}).get("display")
    if requester:
        yield "service_request.requester", str(requester)


def draft_facts(ctx: ToolContext, args: ReferralDraftArgs) -> dict[str, FactValue]:
    """Whether the fax is there and carries every drafted value (read from the stored fax)."""
    try:
        resource, origin = document_for(ctx, args.document_id)
        text = readable_text(resource, source=f"DocumentReference/{args.document_id}") or ""
    except (CareboundError, LookupError):
        return {"document_found": False, "all_values_in_fax": False, "values_not_in_fax": ""}
    missing = sorted(
        {
            f
            for f, v in drafted_values(args.patient, args.service_request)
            if not is_written_in(text, v)
        }
    )
    return {
        "document_found": True,
        "origin": origin,
        "drafted_from_fax": True,
        "all_values_in_fax": not missing,
        "values_not_in_fax": ", ".join(missing)[:200],
    }


@tool(
    scope="ehr:ServiceRequest.write",
    effect="reversible",
    phi={"demographics", "referral"},
    public=("document_id", "dropped"),
    key=("document_id",),
    facts=draft_facts,
    audit_detail=lambda a, r: {
        "document": a.document_id, "patient": r["patient"], "order": r["service_request"]
    },
)  # fmt: skip
def create_referral_from_fax(ctx: ToolContext, args: ReferralDraftArgs) -> dict[str, Any]:
    """Write the confirmed draft: the Patient, then the ServiceRequest (active, an order) about
    that Patient, supported by the fax; each create carries the effect's idempotency key, so a
    retried call writes each once."""
    ehr = ctx.connectors.ehr
    patient_id = ehr.create(dict(args.patient), idempotency_key=f"{ctx.idempotency_key}:patient")
    order = dict(args.service_request)
    order.update(
        status="active",
        intent="order",
        subject={"reference": f"Patient/{patient_id}"},
        supportingInfo=[{"reference": f"DocumentReference/{args.document_id}"}],
    )
    order_id = ehr.create(order, idempotency_key=f"{ctx.idempotency_key}:order")
    return {"patient": f"Patient/{patient_id}", "service_request": f"ServiceRequest/{order_id}"}
