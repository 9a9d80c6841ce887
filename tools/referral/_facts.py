"""What the referral tools read, and the trusted facts the hold policy decides on.

Facts are computed from trusted data (the run's case and the EHR), never from what a planner
claims: whether a recipient is on file, whether a document's text supports the type it is filed
under, whether the referral Task was accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carebound._errors import CareboundError
from carebound.domain.documents import CLASSIFY_MIN_CONFIDENCE
from carebound.domain.drafts import NoteCheck, check_outreach_note
from carebound.fhir import ReferralCase, concept_label
from carebound.tools._spec import FactValue, ToolContext
from carebound.tools.connectors import ResourceNotFoundError, SystemUnavailableError
from carebound.tools.referral._args import (
    DOCUMENT_DISPLAY,
    HREX_TEMP,
    INBOUND_MESSAGE,
    LOINC,
    OWN_TASK_SYSTEMS,
    AttemptArgs,
    CloseRequestArgs,
    FileDocumentArgs,
    ReferralStatusArgs,
    RequestedItem,
    RouteArgs,
)
from carebound.tools.referral._case import (
    ehr_contacts,
    referral_case,
    referring_parties,
    same_contact,
    service_request_ref,
)
from carebound.tools.referral._evidence import classify_resource, is_confident, typed_codes

# --- shared readers --------------------------------------------------------------------------


def case_of(ctx: ToolContext) -> ReferralCase:
    """The run's referral case (parsed once per Bundle)."""
    return referral_case(ctx.case, source=f"run {ctx.run_id} case")


def case_resource(case: Mapping[str, Any], kind: str, ident: str) -> dict[str, Any] | None:
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == kind and resource.get("id") == ident:
            return dict(resource)
    return None


def ehr_read(ctx: ToolContext, kind: str, ident: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.connectors.ehr.read(kind, ident))
    except ResourceNotFoundError:
        return None


def is_received(resource: Mapping[str, Any]) -> bool:
    """Whether a DocumentReference came in as a reply to outreach (inbound message id)."""
    return any(
        isinstance(i, Mapping) and i.get("system") == INBOUND_MESSAGE
        for i in resource.get("identifier", []) or []
    )


def document_for(ctx: ToolContext, document_id: str) -> tuple[dict[str, Any], str]:
    """The document to file, from the case or the EHR (never from the caller), and where it
    came from: ``case``, ``reply`` (stored by ``record_reply``) or ``ehr``.

    Raises:
        LookupError: neither holds that document.
    """
    found = case_resource(ctx.case, "DocumentReference", document_id)
    if found is not None:
        return found, "case"
    found = ehr_read(ctx, "DocumentReference", document_id)
    if found is not None:
        return found, "reply" if is_received(found) else "ehr"
    raise LookupError(f"DocumentReference/{document_id} is not in the case or the EHR")


def type_of(code: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": LOINC, "code": code}
    if code in DOCUMENT_DISPLAY:
        coding["display"] = DOCUMENT_DISPLAY[code]
    return {"coding": [coding]}


def item_input(item: RequestedItem) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": item.display}
    if item.code[:1].isdigit():
        concept["coding"] = [{"system": LOINC, "code": item.code, "display": item.display}]
    return {
        "type": {"coding": [{"system": HREX_TEMP, "code": "data-code"}]},
        "valueCodeableConcept": concept,
    }


def owner_ref(case: ReferralCase) -> dict[str, Any]:
    parties = referring_parties(case)
    return {"reference": parties[0]} if parties else {"display": "Referring office"}


def codes_of_task(task: Mapping[str, Any]) -> set[str]:
    return {str(c.get("system")) for c in (task.get("code") or {}).get("coding", [])}


def referral_task_id(ctx: ToolContext, case: ReferralCase) -> str | None:
    """The id of the referral's own Task: one the case carries with the order as its focus,
    else one in the EHR with that focus that carebound did not create; None when there is
    none."""
    order = service_request_ref(case)
    for task in case.tasks:
        if task.id and case.resolve(task.focus, container=task) is case.service_request:
            return task.id
    for found in ctx.connectors.ehr.search("Task", focus=order):
        if not codes_of_task(found) & OWN_TASK_SYSTEMS:
            return str(found["id"])
    return None


# --- facts -----------------------------------------------------------------------------------


def file_facts(ctx: ToolContext, args: FileDocumentArgs) -> dict[str, FactValue]:
    try:
        resource, origin = document_for(ctx, args.document_id)
        result = classify_resource(resource, source=f"DocumentReference/{args.document_id}")
    except SystemUnavailableError:
        raise  # the EHR is down: no fact about the document (the engine waits for it)
    except (CareboundError, LookupError, ValueError):
        return {"document_found": False, "classification_confident": False}
    typed = typed_codes(resource)
    if typed:
        confident = args.code in typed and not result.injection_suspected
        code, confidence = typed[0], 1.0
    else:
        confident = is_confident(result, args.code)
        code, confidence = result.code, result.confidence
    facts: dict[str, FactValue] = {
        "document_found": True,
        "origin": origin,
        "typed": bool(typed),
        "classification_code": code,
        "classification_confidence": confidence,
        "classification_confident": confident,
        "injection_suspected": result.injection_suspected,
        "classified_by": "rules",
    }
    opinion = args.second_opinion
    if opinion is not None and not typed:
        # A model's reading adds a check, never removes one: both must agree, confidently.
        agree = opinion.code == result.code and opinion.confidence >= CLASSIFY_MIN_CONFIDENCE
        facts.update(
            classified_by="rules and model",
            model_code=opinion.code,
            model_confidence=opinion.confidence,
            classifiers_agree=agree,
            classification_confident=confident and agree,
        )
    return facts


def attempt_facts(ctx: ToolContext, args: AttemptArgs) -> dict[str, FactValue]:
    try:
        contacts = ehr_contacts(ctx.connectors.ehr, case_of(ctx))
    except SystemUnavailableError:
        raise  # the EHR is down: "not on file" would be a wrong fact in the packet
    except CareboundError:
        contacts = []
    on_file = any(
        c.channel == args.channel and same_contact(args.channel, c.value, args.to) for c in contacts
    )
    drafted = bool(args.note and args.note.strip())
    try:
        refused = drafted and not outreach_note_check(case_of(ctx), args.note or "", args.items).ok
    except CareboundError:
        refused = drafted  # a note on a case that cannot be read is not checked, so not sent
    return {
        "recipient_on_file": on_file,
        "attempt": args.attempt,
        "channel": args.channel,
        "drafted_note": drafted,
        "note_refused": refused,
    }


def patient_data(case: ReferralCase) -> list[str]:
    """The case's patient data an outreach note must not carry: name parts, birth date, member
    id and other identifiers, address, phone, e-mail and reason for referral."""
    demo = case.demographics()
    values = [*demo.given, *demo.nicknames, demo.family, demo.member_id, demo.phone]
    values += [*demo.address_lines, demo.city, demo.postal_code]
    if demo.birth_date is not None:
        born = demo.birth_date
        values += [born.isoformat(), f"{born.month}/{born.day}/{born.year}"]
    values += [i.value for i in case.patient.identifier or []]
    values += [t.value for t in case.patient.telecom or []]
    values += [concept_label(r) for r in case.service_request.reasonCode or []]
    return [v for v in values if v]


def outreach_note_check(case: ReferralCase, note: str, items: list[RequestedItem]) -> NoteCheck:
    """The checks of ``carebound.domain.drafts.check_outreach_note`` on a note for ``case``."""
    return check_outreach_note(
        note, protected=patient_data(case), requested=[i.display for i in items]
    )


def close_facts(ctx: ToolContext, args: CloseRequestArgs) -> dict[str, FactValue]:
    replies = [
        c
        for c in ctx.connectors.ehr.search("Communication", based_on=f"Task/{args.task_id}")
        if c.get("received")
    ]
    return {
        "reply_on_record": bool(replies),
        "completing_without_reply": args.outcome == "completed" and not replies,
    }


def status_facts(ctx: ToolContext, args: ReferralStatusArgs) -> dict[str, FactValue]:
    try:
        case = case_of(ctx)
    except CareboundError:
        return {"referral_status": args.status, "order_status": None}
    return {
        "referral_status": args.status,
        "order_status": case.service_request.status,
        "referral_task_on_file": referral_task_id(ctx, case) is not None,
    }


def route_facts(ctx: ToolContext, args: RouteArgs) -> dict[str, FactValue]:
    try:
        case = case_of(ctx)
        task_id = referral_task_id(ctx, case)
    except SystemUnavailableError:
        raise  # the EHR is down: "not accepted" would refuse the routing (SCH-1) for good
    except CareboundError:
        return {"referral_accepted": False}
    task = ehr_read(ctx, "Task", task_id) if task_id else None
    return {"referral_accepted": bool(task and task.get("status") == "accepted")}
