"""Tools of the referral agents: read what is on file, file documents, chase the referring
office, hand over to people, and record the decision on a referral.

Every record goes to the EHR connector as FHIR R4:

- a document request is a CDex-style ``Task`` (code ``data-request-code``, one ``data-code``
  input per item, owner the referring party) that moves ``requested`` -> ``completed`` (the
  office's reply fulfilled it) or ``cancelled`` (we withdrew it and handed it to people);
- each outreach attempt and each reply is a ``Communication`` based on that Task;
- a hand-over to intake staff and the routing to scheduling are ``Task`` resources for people;
- the decision on the referral moves the referral ``Task`` as the performer (accepted/rejected).

Facts for the hold policy are computed here from trusted data (the run's case and the EHR),
never from what a planner claims: whether a recipient is on file, whether a document's text
supports the type it is filed under, whether the referral Task was accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import CareboundError
from carebound.agents._referral_common import (
    INBOUND_ID_SYSTEM,
    case_contacts,
    classify_resource,
    ehr_contacts,
    is_confident,
    patient_ref,
    referral_case,
    referring_parties,
    same_contact,
    service_request_ref,
    typed_codes,
)
from carebound.domain.documents import DOCUMENT_TYPES
from carebound.fhir import ReferralCase, concept_label
from carebound.tools._spec import FactValue, ToolContext, tool
from carebound.tools.connectors import Channel, ResourceNotFoundError

LOINC = "http://loinc.org"
CDEX_TEMP = "http://hl7.org/fhir/us/davinci-cdex/CodeSystem/cdex-temp"
HREX_TEMP = "http://hl7.org/fhir/us/davinci-hrex/CodeSystem/hrex-temp"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
CAREBOUND_TASK = "urn:carebound:task-code"
"""Code system of the Tasks carebound creates for people (``chase-by-hand``,
``schedule-visit``)."""
OUTREACH_MESSAGE = "urn:carebound:outreach-message"
INBOUND_MESSAGE = INBOUND_ID_SYSTEM
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
_MEDIUM: Mapping[str, str] = {
    "fax": "FAXWRIT",
    "portal": "ONLINEWRIT",
    "email": "EMAILWRIT",
    "phone": "PHONE",
}
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_LOINC_CODE = r"^\d{1,7}-\d$"
_DISPLAY = {t.code: t.display for t in DOCUMENT_TYPES}
_OWN_TASK_SYSTEMS = frozenset({CDEX_TEMP, CAREBOUND_TASK})


class NoArgs(BaseModel):
    """No arguments: the referral is the run's case."""

    model_config = ConfigDict(extra="forbid")


class RequestedItem(BaseModel):
    """One thing asked of the referring office."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="LOINC document code, or coverage/prior-auth.")
    display: str = Field(min_length=1, description="Its name, e.g. 'Progress note'.")


class FileDocumentArgs(BaseModel):
    """File one document in the EHR under a document type."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(
        pattern=_FHIR_ID, description="The DocumentReference id (in the case or the EHR)."
    )
    code: str | None = Field(
        default=None, pattern=_LOINC_CODE, description="LOINC type to file it under; None: none."
    )


class OpenRequestArgs(BaseModel):
    """Open a document request (CDex Task) to the referring office."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=_FHIR_ID)
    items: list[RequestedItem] = Field(min_length=1)
    due: datetime | None = Field(default=None, description="When it goes to a person.")


class AttemptArgs(BaseModel):
    """Send one attempt of a document request."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=_FHIR_ID, description="The request Task (the outreach id).")
    attempt: int = Field(ge=1, description="Which attempt this is, from 1.")
    channel: Channel
    to: str = Field(min_length=1, description="Fax number, portal address, email or phone.")
    items: list[RequestedItem] = Field(min_length=1, description="What is still needed.")


class RecordReplyArgs(BaseModel):
    """Record a reply from the referring office as a Communication."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=_FHIR_ID)
    inbound_id: str = Field(min_length=1)
    channel: Channel
    sender: str
    received_at: datetime
    documents: list[dict[str, Any]] = Field(
        default_factory=list, description="The DocumentReferences the reply carried, as received."
    )


class CloseRequestArgs(BaseModel):
    """Close a document request."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(pattern=_FHIR_ID)
    outcome: Literal["completed", "cancelled"]
    reason: str = Field(min_length=1)


class EscalateArgs(BaseModel):
    """Hand the chase over to people."""

    model_config = ConfigDict(extra="forbid")

    focus: str = Field(min_length=1, description="What to work on: 'Task/<id>' or the order.")
    reason: str = Field(min_length=1)
    items: list[RequestedItem] = Field(default_factory=list)
    owner: str = Field(min_length=1, description="Who takes over (display).")


class ReferralStatusArgs(BaseModel):
    """Accept or reject the referral (moves the referral Task as the performer)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["accepted", "rejected"]
    reason: str = Field(min_length=1, max_length=1000)
    open_issues: list[str] = Field(
        default_factory=list, description="High-risk mismatches still open (shown in the packet)."
    )


class RouteArgs(BaseModel):
    """Route an accepted referral to scheduling."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Field(default="Scheduling", min_length=1)
    note: str = Field(default="", max_length=500)


# --- shared readers --------------------------------------------------------------------------


def case_of(ctx: ToolContext) -> ReferralCase:
    """The run's referral case (parsed once per Bundle)."""
    return referral_case(ctx.case, source=f"run {ctx.run_id} case")


def _case_resource(case: Mapping[str, Any], kind: str, ident: str) -> dict[str, Any] | None:
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == kind and resource.get("id") == ident:
            return dict(resource)
    return None


def _ehr_read(ctx: ToolContext, kind: str, ident: str) -> dict[str, Any] | None:
    try:
        return dict(ctx.world.ehr.read(kind, ident))
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
    found = _case_resource(ctx.case, "DocumentReference", document_id)
    if found is not None:
        return found, "case"
    found = _ehr_read(ctx, "DocumentReference", document_id)
    if found is not None:
        return found, "reply" if is_received(found) else "ehr"
    raise LookupError(f"DocumentReference/{document_id} is not in the case or the EHR")


def _type_of(code: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": LOINC, "code": code}
    if code in _DISPLAY:
        coding["display"] = _DISPLAY[code]
    return {"coding": [coding]}


def _item_input(item: RequestedItem) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": item.display}
    if item.code[:1].isdigit():
        concept["coding"] = [{"system": LOINC, "code": item.code, "display": item.display}]
    return {
        "type": {"coding": [{"system": HREX_TEMP, "code": "data-code"}]},
        "valueCodeableConcept": concept,
    }


def _owner_ref(case: ReferralCase) -> dict[str, Any]:
    parties = referring_parties(case)
    return {"reference": parties[0]} if parties else {"display": "Referring office"}


def _codes_of_task(task: Mapping[str, Any]) -> set[str]:
    return {str(c.get("system")) for c in (task.get("code") or {}).get("coding", [])}


def referral_task_id(ctx: ToolContext, case: ReferralCase) -> str | None:
    """The id of the referral's own Task: one the case carries with the order as its focus,
    else one in the EHR with that focus that carebound did not create; None when there is
    none."""
    order = service_request_ref(case)
    for task in case.tasks:
        if task.id and case.resolve(task.focus, container=task) is case.service_request:
            return task.id
    for task in ctx.world.ehr.search("Task", focus=order):
        if not _codes_of_task(task) & _OWN_TASK_SYSTEMS:
            return str(task["id"])
    return None


# --- facts -----------------------------------------------------------------------------------


def _file_facts(ctx: ToolContext, args: FileDocumentArgs) -> dict[str, FactValue]:
    try:
        resource, origin = document_for(ctx, args.document_id)
        result = classify_resource(resource, source=f"DocumentReference/{args.document_id}")
    except (CareboundError, LookupError, ValueError):
        return {"document_found": False, "classification_confident": False}
    typed = typed_codes(resource)
    if typed:
        confident = args.code in typed and not result.injection_suspected
        code, confidence = typed[0], 1.0
    else:
        confident = is_confident(result, args.code)
        code, confidence = result.code, result.confidence
    return {
        "document_found": True,
        "origin": origin,
        "typed": bool(typed),
        "classification_code": code,
        "classification_confidence": confidence,
        "classification_confident": confident,
        "injection_suspected": result.injection_suspected,
    }


def _recipient_facts(ctx: ToolContext, args: AttemptArgs) -> dict[str, FactValue]:
    try:
        contacts = ehr_contacts(ctx.world.ehr, case_of(ctx))
    except CareboundError:
        contacts = []
    on_file = any(
        c.channel == args.channel and same_contact(args.channel, c.value, args.to) for c in contacts
    )
    return {"recipient_on_file": on_file, "attempt": args.attempt, "channel": args.channel}


def _close_facts(ctx: ToolContext, args: CloseRequestArgs) -> dict[str, FactValue]:
    replies = [
        c
        for c in ctx.world.ehr.search("Communication", based_on=f"Task/{args.task_id}")
        if c.get("received")
    ]
    return {
        "reply_on_record": bool(replies),
        "completing_without_reply": args.outcome == "completed" and not replies,
    }


def _status_facts(ctx: ToolContext, args: ReferralStatusArgs) -> dict[str, FactValue]:
    try:
        case = case_of(ctx)
    except CareboundError:
        return {"referral_status": args.status, "order_status": None}
    return {
        "referral_status": args.status,
        "order_status": case.service_request.status,
        "referral_task_on_file": referral_task_id(ctx, case) is not None,
    }


def _route_facts(ctx: ToolContext, args: RouteArgs) -> dict[str, FactValue]:
    try:
        case = case_of(ctx)
        task_id = referral_task_id(ctx, case)
    except CareboundError:
        return {"referral_accepted": False}
    task = _ehr_read(ctx, "Task", task_id) if task_id else None
    return {"referral_accepted": bool(task and task.get("status") == "accepted")}


# --- reads -----------------------------------------------------------------------------------


@tool(scope="ehr:DocumentReference.read", effect="read", phi={"documents"})
def list_documents_on_file(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """The patient's documents already in the EHR (DocumentReferences about the patient)."""
    case = case_of(ctx)
    return {"documents": ctx.world.ehr.search("DocumentReference", subject=patient_ref(case))}


@tool(scope="ehr:Practitioner.read", effect="read", phi={"contact"})
def list_contacts_on_file(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """How the referring provider can be reached: contacts on file in the EHR, and those that
    only came with the referral."""
    case = case_of(ctx)
    return {
        "on_file": [c.model_dump(mode="json") for c in ehr_contacts(ctx.world.ehr, case)],
        "from_referral": [c.model_dump(mode="json") for c in case_contacts(case)],
    }


# --- documents -------------------------------------------------------------------------------


@tool(
    scope="ehr:DocumentReference.write",
    effect="reversible",
    phi={"documents"},
    public=("document_id", "code"),
    key=("document_id", "code"),
    facts=_file_facts,
    audit_detail=lambda a, r: {"document": a.document_id, "code": a.code, "action": r["action"]},
)
def file_document(ctx: ToolContext, args: FileDocumentArgs) -> dict[str, Any]:
    """File a document in the EHR under a LOINC document type, about the patient and linked to
    the referral: a received (preliminary) document becomes final with that type; a case
    document is stored, or typed where the EHR already holds it. Whether the text supports the
    type is the policy's fact, computed from the stored text, not the caller's claim."""
    case = case_of(ctx)
    resource, origin = document_for(ctx, args.document_id)
    ehr = ctx.world.ehr
    existing = _ehr_read(ctx, "DocumentReference", args.document_id)
    if existing is None:
        doc = json.loads(json.dumps(resource))
        if args.code:
            doc["type"] = _type_of(args.code)
        doc.setdefault("subject", {"reference": patient_ref(case)})
        ehr.create(_linked(doc, case), idempotency_key=ctx.idempotency_key)
        action = "created"
    else:
        changes: dict[str, object] = {}
        if args.code and typed_codes(existing) != [args.code]:
            changes["type"] = _type_of(args.code)
        if "subject" not in existing:
            changes["subject"] = {"reference": patient_ref(case)}
        if existing.get("docStatus") == "preliminary" and is_received(existing):
            changes["docStatus"] = "final"
        if changes:
            ehr.update_fields(
                "DocumentReference", args.document_id, changes, idempotency_key=ctx.idempotency_key
            )
        action = "filed" if changes else "unchanged"
    return {
        "document": f"DocumentReference/{args.document_id}",
        "code": args.code,
        "origin": origin,
        "action": action,
    }


def _linked(doc: dict[str, Any], case: ReferralCase) -> dict[str, Any]:
    context = doc.setdefault("context", {})
    related = context.setdefault("related", [])
    order = {"reference": service_request_ref(case)}
    if order not in related:
        related.append(order)
    return doc


# --- the document request --------------------------------------------------------------------


@tool(
    scope="ehr:Task.write",
    effect="reversible",
    phi={"referral"},
    public=("task_id", "items", "due"),
    key=("task_id",),
    audit_detail=lambda a, r: {"task": a.task_id, "items": len(a.items)},
)
def open_document_request(ctx: ToolContext, args: OpenRequestArgs) -> dict[str, Any]:
    """Open a document request to the referring office: a CDex data-request Task (status
    requested) with one data-code input per item, owned by the referring party."""
    case = case_of(ctx)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": args.task_id,
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": CDEX_TEMP, "code": "data-request-code"}],
            "text": "Request for referral documents",
        },
        "focus": {"reference": service_request_ref(case)},
        "for": {"reference": patient_ref(case)},
        "authoredOn": ctx.now.isoformat(),
        "lastModified": ctx.now.isoformat(),
        "requester": {"display": "Referral intake (carebound referral_chaser)"},
        "owner": _owner_ref(case),
        "input": [
            *[_item_input(item) for item in args.items],
            {
                "type": {"coding": [{"system": CDEX_TEMP, "code": "purpose-of-use"}]},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                            "code": "COC",
                        }
                    ]
                },
            },
        ],
    }
    if args.due is not None:
        task["restriction"] = {"period": {"end": args.due.isoformat()}}
    task_id = ctx.world.ehr.create(task, idempotency_key=ctx.idempotency_key)
    return {"task": f"Task/{task_id}", "items": [i.code for i in args.items]}


def _request_body(case: ReferralCase, args: AttemptArgs) -> str:
    demo = case.demographics()
    who = " ".join([*demo.given, demo.family or ""]).strip() or "(no name)"
    born = demo.birth_date.isoformat() if demo.birth_date else "(unknown)"
    service = concept_label(case.service_request.code) or "the referred service"
    lines = [
        f"Document request {args.task_id}, attempt {args.attempt}.",
        f"For your referral {service_request_ref(case)} ({service}) of patient {who}, "
        f"born {born}, please send:",
        *[
            f"- {i.display} (LOINC {i.code})" if i.code[:1].isdigit() else f"- {i.display}"
            for i in args.items
        ],
        f"Please quote {args.task_id} in your reply.",
    ]
    return "\n".join(lines)


@tool(
    scope="outreach:document_request.send",
    effect="external",
    phi={"contact", "demographics"},
    public=("task_id", "attempt", "channel", "items"),
    key=("task_id", "attempt"),
    constraints={"recipient": "to"},
    facts=_recipient_facts,
    audit_detail=lambda a, r: {"task": a.task_id, "attempt": a.attempt, "channel": a.channel},
)
def send_request_attempt(ctx: ToolContext, args: AttemptArgs) -> dict[str, Any]:
    """Send one attempt of a document request to the referring office and record it as a
    Communication based on the request Task. Replies come back matched to the Task id."""
    case = case_of(ctx)
    body = _request_body(case, args)
    receipt = ctx.world.outreach.send(
        args.channel,
        args.to,
        subject=f"Documents needed for referral {service_request_ref(case)}",
        body=body,
        request_id=args.task_id,
        requested_codes=[i.code for i in args.items],
        idempotency_key=ctx.idempotency_key,
        now=ctx.now,
    )
    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": OUTREACH_MESSAGE, "value": receipt.message_id}],
        "basedOn": [{"reference": f"Task/{args.task_id}"}],
        "category": [{"text": f"document request, attempt {receipt.attempt}"}],
        "medium": [{"coding": [{"system": PARTICIPATION_MODE, "code": _MEDIUM[args.channel]}]}],
        "subject": {"reference": patient_ref(case)},
        "sent": ctx.now.isoformat(),
        "recipient": [_owner_ref(case)],
        "payload": [{"contentString": body}],
    }
    comm_id = ctx.world.ehr.create(communication, idempotency_key=f"{ctx.idempotency_key}:comm")
    return {
        "message_id": receipt.message_id,
        "attempt": receipt.attempt,
        "channel": receipt.channel,
        "sent_at": receipt.sent_at.isoformat(),
        "communication": f"Communication/{comm_id}",
    }


@tool(
    scope="ehr:Communication.write",
    effect="reversible",
    phi={"documents"},
    public=("task_id", "inbound_id", "channel", "sender", "received_at"),
    key=("inbound_id",),
    audit_detail=lambda a, r: {"task": a.task_id, "inbound": a.inbound_id},
)
def record_reply(ctx: ToolContext, args: RecordReplyArgs) -> dict[str, Any]:
    """Record a reply from the referring office: each document it carried is stored in the EHR
    as received (``docStatus`` preliminary: it counts once ``file_document`` files it), and a
    Communication based on the request Task references them."""
    case = case_of(ctx)
    ids = []
    for n, received in enumerate(args.documents):
        doc = json.loads(json.dumps(received))
        doc["docStatus"] = "preliminary"
        doc.setdefault("subject", {"reference": patient_ref(case)})
        identifiers = doc.setdefault("identifier", [])
        if not is_received(doc):
            identifiers.append({"system": INBOUND_MESSAGE, "value": args.inbound_id})
        ids.append(
            ctx.world.ehr.create(_linked(doc, case), idempotency_key=f"{ctx.idempotency_key}:{n}")
        )
    communication: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": INBOUND_MESSAGE, "value": args.inbound_id}],
        "basedOn": [{"reference": f"Task/{args.task_id}"}],
        "category": [{"text": "reply to document request"}],
        "medium": [{"coding": [{"system": PARTICIPATION_MODE, "code": _MEDIUM[args.channel]}]}],
        "subject": {"reference": patient_ref(case)},
        "received": args.received_at.isoformat(),
        "sender": {**_owner_ref(case), "display": f"{args.channel} {args.sender}"},
    }
    if ids:
        communication["payload"] = [
            {"contentReference": {"reference": f"DocumentReference/{d}"}} for d in ids
        ]
    comm_id = ctx.world.ehr.create(communication, idempotency_key=ctx.idempotency_key)
    return {"communication": f"Communication/{comm_id}", "documents": ids}


@tool(
    scope="ehr:Task.write",
    effect="reversible",
    phi={"referral"},
    public=("task_id", "outcome", "reason"),
    key=("task_id", "outcome"),
    facts=_close_facts,
    audit_detail=lambda a, r: {"task": a.task_id, "outcome": a.outcome},
)
def close_document_request(ctx: ToolContext, args: CloseRequestArgs) -> dict[str, Any]:
    """Close a document request. ``completed`` records the referring office's fulfilment (the
    performer's status, backed by its reply on record); ``cancelled`` is ours, as requester,
    when we withdraw the request and hand it to people."""
    role: Literal["performer", "requester"] = (
        "performer" if args.outcome == "completed" else "requester"
    )
    task = ctx.world.ehr.set_task_status(
        args.task_id,
        args.outcome,
        by_role=role,
        reason=args.reason,
        idempotency_key=ctx.idempotency_key,
    )
    return {"task": f"Task/{args.task_id}", "status": task.get("status"), "by_role": role}


@tool(
    scope="ehr:Task.write",
    effect="reversible",
    phi={"referral"},
    public=("focus", "reason", "items", "owner"),
    key=("focus",),
    audit_detail=lambda a, r: {"focus": a.focus, "task": r["task"]},
)
def escalate_to_staff(ctx: ToolContext, args: EscalateArgs) -> dict[str, Any]:
    """Hand the chase to people: an urgent EHR Task for intake staff naming what is still
    missing and why the agent stopped."""
    case = case_of(ctx)
    wanted = "; ".join(f"{i.display} ({i.code})" for i in args.items) or "see the referral"
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {
            "coding": [{"system": CAREBOUND_TASK, "code": "chase-by-hand"}],
            "text": "Chase referral documents by hand",
        },
        "description": f"{args.reason} Still needed: {wanted}."[:1000],
        "focus": {"reference": args.focus},
        "for": {"reference": patient_ref(case)},
        "authoredOn": ctx.now.isoformat(),
        "requester": {"display": "Referral intake (carebound)"},
        "owner": {"display": args.owner},
        "input": [_item_input(i) for i in args.items] or None,
    }
    task = {k: v for k, v in task.items() if v is not None}
    task_id = ctx.world.ehr.create(task, idempotency_key=ctx.idempotency_key)
    return {"task": f"Task/{task_id}", "owner": args.owner}


# --- the decision and what follows -----------------------------------------------------------


def _ensure_referral_task(ctx: ToolContext, case: ReferralCase) -> tuple[str, bool]:
    task_id = referral_task_id(ctx, case)
    if task_id is not None:
        if _ehr_read(ctx, "Task", task_id) is None:
            copy = _case_resource(ctx.case, "Task", task_id)
            if copy is not None:
                ctx.world.ehr.create(copy, idempotency_key=f"{ctx.idempotency_key}:copy")
                return task_id, True
        else:
            return task_id, False
    request = case.service_request
    order_id = request.id or "order"
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"referral-{order_id}"[:64],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": service_request_ref(case)},
        "for": {"reference": patient_ref(case)},
        "authoredOn": (case.authored_on or ctx.now).isoformat(),
        "requester": _owner_ref(case),
    }
    if case.performer is not None and case.performer.id:
        task["owner"] = {"reference": f"{case.performer.get_resource_type()}/{case.performer.id}"}
    created = ctx.world.ehr.create(task, idempotency_key=f"{ctx.idempotency_key}:task")
    return created, True


@tool(
    scope="ehr:Task.status",
    effect="reversible",
    phi={"referral"},
    public=("status", "reason", "open_issues"),
    key=("status",),
    facts=_status_facts,
    audit_detail=lambda a, r: {"task": r["task"], "status": a.status},
)
def set_referral_status(ctx: ToolContext, args: ReferralStatusArgs) -> dict[str, Any]:
    """Accept or reject the referral: move its Task to ``accepted`` or ``rejected`` as the
    performer (SDOH referral Task permissions), with the reason as statusReason. When the
    referral came without a Task, one mirroring the order (status requested) is recorded
    first."""
    case = case_of(ctx)
    task_id, created = _ensure_referral_task(ctx, case)
    ctx.world.ehr.set_task_status(
        task_id,
        args.status,
        by_role="performer",
        reason=args.reason,
        idempotency_key=ctx.idempotency_key,
    )
    return {"task": f"Task/{task_id}", "status": args.status, "created_task": created}


@tool(
    scope="ehr:Task.write",
    effect="reversible",
    phi={"referral"},
    public=("owner", "note"),
    facts=_route_facts,
    audit_detail=lambda a, r: {"task": r["task"], "owner": a.owner},
)
def route_to_scheduling(ctx: ToolContext, args: RouteArgs) -> dict[str, Any]:
    """Route the accepted referral to scheduling: a Task for the scheduling team, based on the
    referral Task, with the order as its focus."""
    case = case_of(ctx)
    referral = referral_task_id(ctx, case)
    if referral is None:
        raise LookupError("the referral has no Task to route; accept it first")
    service = case.specialty or "the referred visit"
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": CAREBOUND_TASK, "code": "schedule-visit"}],
            "text": "Schedule the referred visit",
        },
        "description": (f"Schedule: {service}. {args.note}".strip())[:1000],
        "basedOn": [{"reference": f"Task/{referral}"}],
        "focus": {"reference": service_request_ref(case)},
        "for": {"reference": patient_ref(case)},
        "authoredOn": ctx.now.isoformat(),
        "requester": {"display": "Referral intake (carebound)"},
        "owner": {"display": args.owner},
    }
    task_id = ctx.world.ehr.create(task, idempotency_key=ctx.idempotency_key)
    return {"task": f"Task/{task_id}", "referral_task": f"Task/{referral}"}


CHASE_TOOLS = (
    list_documents_on_file,
    list_contacts_on_file,
    file_document,
    open_document_request,
    send_request_attempt,
    record_reply,
    close_document_request,
    escalate_to_staff,
)
"""The tools of the referral chaser."""

PACKET_TOOLS = (list_documents_on_file, set_referral_status)
"""The tools of the packet builder."""

__all__ = [
    "CAREBOUND_TASK",
    "CDEX_TEMP",
    "CHASE_TOOLS",
    "PACKET_TOOLS",
    "AttemptArgs",
    "CloseRequestArgs",
    "EscalateArgs",
    "FileDocumentArgs",
    "NoArgs",
    "OpenRequestArgs",
    "RecordReplyArgs",
    "ReferralStatusArgs",
    "RequestedItem",
    "RouteArgs",
    "case_of",
    "close_document_request",
    "document_for",
    "escalate_to_staff",
    "file_document",
    "is_received",
    "list_contacts_on_file",
    "list_documents_on_file",
    "open_document_request",
    "record_reply",
    "referral_task_id",
    "route_to_scheduling",
    "send_request_attempt",
    "set_referral_status",
]
