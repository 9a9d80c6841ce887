"""Task 2 of the referral agents' AI assist: a referral that came as an unstructured fax.

When a case carries no referral order but an untyped fax, and a model is configured for the
``extract`` task, the model reads the fax (its text only, as delimited DATA) into a
:class:`ReferralExtraction`. Every value it gives must be written in the fax
(``is_written_in``): what is not is dropped, by field name, before anything is shown; a draft
without the patient's family name, birth date and the service asked for is not proposed. The
rest becomes a draft Patient and ServiceRequest (R4B) proposed as ``create_referral_from_fax``,
which EXT-1 holds for an intake coordinator: nothing is written unconfirmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import AgentContext, FinishSpec, Plan, PlannerView, ProposedCall
from carebound._errors import CareboundError
from carebound.assist import PromptTemplate, call
from carebound.domain.documents import is_written_in
from carebound.tools.referral import ReferralDraftArgs, readable_text, typed_codes

STATE_KEY = "fax_referral"
TOOL = "create_referral_from_fax"


class ReferralExtraction(BaseModel):
    """What a faxed referral says, as read by a chat model (its structured output)."""

    model_config = ConfigDict(extra="ignore")

    patient_family_name: str | None = Field(default=None, description="Patient's family name.")
    patient_given_names: list[str] = Field(default_factory=list, description="Given names.")
    patient_birth_date: str | None = Field(default=None, description="Birth date, YYYY-MM-DD.")
    patient_gender: Literal["male", "female", "other", "unknown"] | None = None
    patient_record_number: str | None = Field(default=None, description="MRN, if written.")
    patient_phone: str | None = Field(default=None, description="Patient's phone, if written.")
    service: str | None = Field(default=None, description="The service or specialty requested.")
    reason: str | None = Field(default=None, description="The reason for referral, as written.")
    priority: Literal["routine", "urgent", "asap", "stat"] | None = None
    referring_clinician: str | None = Field(default=None, description="Who refers, as written.")


EXTRACT_TEMPLATE = PromptTemplate(
    id="extract-referral/v1",
    task="extract",
    instructions=(
        "You read faxed referrals for a referral intake team. From the referral in the DATA "
        "block, copy the patient's names, birth date, sex, record number and phone, the service "
        "or specialty requested, the reason for referral, its priority and the referring "
        "clinician, each exactly as written. Leave out anything the fax does not say: an empty "
        "field is right, a guessed one is wrong."
    ),
)
"""The extraction prompt (its id and hash are in every call's audit event)."""


class FaxReferralMemory(BaseModel):
    """Where the fax's draft stands (``memory[key]["fax_referral"]``, inside the calling
    planner's own memory section, so a composing agent keeps it with that planner's)."""

    proposed: bool = False
    document_id: str = ""
    dropped: list[str] = Field(default_factory=list)


def _fax(case: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first untyped DocumentReference with readable text in the case: (id, text)."""
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "DocumentReference" or typed_codes(resource):
            continue
        try:
            text = readable_text(resource, source=f"DocumentReference/{resource.get('id')}")
        except CareboundError:
            continue
        if text and resource.get("id"):
            return str(resource["id"]), text
    return None


def _grounded(text: str, extraction: ReferralExtraction) -> tuple[dict[str, Any], list[str]]:
    """The extraction's values the fax carries, and the names of those it does not."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for field, value in extraction.model_dump().items():
        if value in (None, [], ""):
            continue
        if field == "patient_given_names":
            names = [n for n in value if is_written_in(text, n)]
            if len(names) < len(value):
                dropped.append(field)
            if names:
                kept[field] = names
        elif field == "patient_gender":
            kept[field] = value  # a code, not a quote: shown to the coordinator to confirm
        elif is_written_in(text, str(value)):
            kept[field] = value
        else:
            dropped.append(field)
    return kept, dropped


def draft_args(document_id: str, kept: Mapping[str, Any], dropped: list[str]) -> dict[str, Any]:
    """``create_referral_from_fax`` arguments from grounded values (checked as FHIR R4B)."""
    name: dict[str, Any] = {"family": kept["patient_family_name"]}
    if kept.get("patient_given_names"):
        name["given"] = kept["patient_given_names"]
    patient: dict[str, Any] = {
        "resourceType": "Patient", "name": [name], "birthDate": kept["patient_birth_date"],
    }  # fmt: skip
    if kept.get("patient_gender"):
        patient["gender"] = kept["patient_gender"]
    if kept.get("patient_record_number"):
        patient["identifier"] = [{"type": {"text": "MRN (as faxed)"},
                                  "value": kept["patient_record_number"]}]  # fmt: skip
    if kept.get("patient_phone"):
        patient["telecom"] = [{"system": "phone", "value": kept["patient_phone"]}]
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "order",
        "subject": {"display": "the patient drafted with this order"},
        "code": {"text": kept["service"]},
    }  # fmt: skip
    if kept.get("reason"):
        order["reasonCode"] = [{"text": kept["reason"]}]
    if kept.get("priority"):
        order["priority"] = kept["priority"]
    if kept.get("referring_clinician"):
        order["requester"] = {"display": kept["referring_clinician"]}
    args = ReferralDraftArgs(
        document_id=document_id, patient=patient, service_request=order, dropped=dropped
    )
    return args.model_dump(mode="json")


def _finished(view: PlannerView, key: str, mem: FaxReferralMemory) -> Plan | None:
    """The finish once the coordinator answered: ``escalated`` in the planner's section (the
    referral now exists, and a new run works it), else ``failed``."""
    result = next((r for r in view.results if r.tool == TOOL), None)
    if result is None:
        return None
    made = result.result or {}
    ok = result.status == "executed"
    summary = (
        f"referral drafted from fax {mem.document_id} and confirmed: "
        f"{made.get('service_request')} for {made.get('patient')}; start a referral run on it"
        if ok
        else f"the referral drafted from fax {mem.document_id} was not confirmed "
        f"({result.status}): a person enters it"
    )
    section = {STATE_KEY: mem.model_dump(mode="json"), "outcome": "escalated" if ok else "failed"}
    return Plan(
        finish=FinishSpec(status="completed" if ok else "failed", summary=summary),
        memory={**view.memory, key: section},
    )


def plan_fax_referral(ctx: AgentContext, view: PlannerView, *, key: str) -> Plan | None:
    """The plan for a case without a referral order: draft one from its fax (held by EXT-1),
    then finish on the coordinator's answer; its state lives in ``memory[key]`` (the calling
    planner's section). None: this does not apply (no fax, no model for ``extract``), and the
    caller fails the run as without a model."""
    section = view.memory.get(key)
    raw = section.get(STATE_KEY) if isinstance(section, Mapping) else None
    mem = FaxReferralMemory.model_validate(raw or {})
    if mem.proposed:
        return _finished(view, key, mem)
    models = ctx.models
    fax = _fax(ctx.case)
    if fax is None or models is None or models.model_for("extract") is None:
        return None
    document_id, text = fax
    got = call(ctx, EXTRACT_TEMPLATE, {"document_text": text}, ReferralExtraction)
    if got.output is None:
        return None
    kept, dropped = _grounded(text, got.output)
    needed = ("patient_family_name", "patient_birth_date", "service")
    if not all(kept.get(f) for f in needed):
        summary = (
            f"cannot chase: no referral order, and fax {document_id} did not give the patient's "
            "name, birth date and the service asked for: a person enters the referral"
        )
        return Plan(finish=FinishSpec(status="failed", summary=summary))
    args = draft_args(document_id, kept, dropped)
    why = f"the referral came as fax {document_id}: a model drafted it; a coordinator confirms"
    if dropped:
        why += f" (dropped, not in the fax: {', '.join(dropped)})"
    state = FaxReferralMemory(proposed=True, document_id=document_id, dropped=dropped)
    memory = {**view.memory, key: {STATE_KEY: state.model_dump(mode="json")}}
    return Plan(calls=[ProposedCall(tool=TOOL, args=args, why=why)], memory=memory)
