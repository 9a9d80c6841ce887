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
from typing import Any, Literal

from carebound.fhir import ReferralCase, concept_label
from carebound.tools._spec import ToolContext, tool
from carebound.tools.referral._args import (
    CAREBOUND_TASK,
    CDEX_TEMP,
    INBOUND_MESSAGE,
    MEDIUM,
    OUTREACH_MESSAGE,
    PARTICIPATION_MODE,
    TASK_CODE,
    AttemptArgs,
    CloseRequestArgs,
    EscalateArgs,
    FileDocumentArgs,
    NoArgs,
    OpenRequestArgs,
    RecordReplyArgs,
    ReferralStatusArgs,
    RouteArgs,
)
from carebound.tools.referral._case import (
    case_contacts,
    ehr_contacts,
    patient_ref,
    service_request_ref,
)
from carebound.tools.referral._evidence import typed_codes
from carebound.tools.referral._facts import (
    attempt_facts,
    case_of,
    case_resource,
    close_facts,
    document_for,
    ehr_read,
    file_facts,
    is_received,
    item_input,
    outreach_note_check,
    owner_ref,
    referral_task_id,
    route_facts,
    status_facts,
    type_of,
)
from carebound.tools.referral._fax_referral import create_referral_from_fax

# --- reads -----------------------------------------------------------------------------------


@tool(scope="ehr:DocumentReference.read", effect="read", phi={"documents"})
def list_documents_on_file(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """The patient's documents already in the EHR (DocumentReferences about the patient)."""
    case = case_of(ctx)
    return {"documents": ctx.connectors.ehr.search("DocumentReference", subject=patient_ref(case))}


@tool(scope="ehr:Practitioner.read", effect="read", phi={"contact"})
def list_contacts_on_file(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """How the referring provider can be reached: contacts on file in the EHR, and those that
    only came with the referral."""
    case = case_of(ctx)
    return {
        "on_file": [c.model_dump(mode="json") for c in ehr_contacts(ctx.connectors.ehr, case)],
        "from_referral": [c.model_dump(mode="json") for c in case_contacts(case)],
    }


# --- documents -------------------------------------------------------------------------------


@tool(
    scope="ehr:DocumentReference.write",
    effect="reversible",
    phi={"documents"},
    public=("document_id", "code"),
    key=("document_id", "code"),
    facts=file_facts,
    audit_detail=lambda a, r: {"document": a.document_id, "code": a.code, "action": r["action"]},
)
def file_document(ctx: ToolContext, args: FileDocumentArgs) -> dict[str, Any]:
    """File a document in the EHR under a LOINC document type, about the patient and linked to
    the referral: a received (preliminary) document becomes final with that type; a case
    document is stored, or typed where the EHR already holds it. Whether the text supports the
    type is the policy's fact, computed from the stored text, not the caller's claim."""
    case = case_of(ctx)
    resource, origin = document_for(ctx, args.document_id)
    ehr = ctx.connectors.ehr
    existing = ehr_read(ctx, "DocumentReference", args.document_id)
    if existing is None:
        doc = json.loads(json.dumps(resource))
        if args.code:
            doc["type"] = type_of(args.code)
        doc.setdefault("subject", {"reference": patient_ref(case)})
        ehr.create(_linked(doc, case), idempotency_key=ctx.idempotency_key)
        action = "created"
    else:
        changes: dict[str, object] = {}
        if args.code and typed_codes(existing) != [args.code]:
            changes["type"] = type_of(args.code)
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
        "owner": owner_ref(case),
        "input": [
            *[item_input(item) for item in args.items],
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
    task_id = ctx.connectors.ehr.create(task, idempotency_key=ctx.idempotency_key)
    return {"task": f"Task/{task_id}", "items": [i.code for i in args.items]}


def _request_body(case: ReferralCase, args: AttemptArgs) -> str:
    """The message: rule-made parts, with the note (when one passed OUT-4) after the first line."""
    demo = case.demographics()
    who = " ".join([*demo.given, demo.family or ""]).strip() or "(no name)"
    born = demo.birth_date.isoformat() if demo.birth_date else "(unknown)"
    service = concept_label(case.service_request.code) or "the referred service"
    note = [args.note.strip(), ""] if args.note and args.note.strip() else []
    lines = [
        f"Document request {args.task_id}, attempt {args.attempt}.",
        *note,
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
    public=("task_id", "attempt", "channel", "items", "note", "drafted_by"),  # note: OUT-4
    key=("task_id", "attempt"),
    constraints={"recipient": "to"},
    facts=attempt_facts,
    audit_detail=lambda a, r: {"task": a.task_id, "attempt": a.attempt, "channel": a.channel},
)
def send_request_attempt(ctx: ToolContext, args: AttemptArgs) -> dict[str, Any]:
    """Send one attempt of a document request to the referring office and record it as a
    Communication based on the request Task. Replies come back matched to the Task id."""
    case = case_of(ctx)
    if args.note and args.note.strip():
        check = outreach_note_check(case, args.note, args.items)
        if not check.ok:  # OUT-4 refuses it first; this holds under any pack
            raise ValueError(f"the message's free text was not sent: {check.explanation}")
    body = _request_body(case, args)
    receipt = ctx.connectors.outreach.send(
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
        "medium": [{"coding": [{"system": PARTICIPATION_MODE, "code": MEDIUM[args.channel]}]}],
        "subject": {"reference": patient_ref(case)},
        "sent": ctx.now.isoformat(),
        "recipient": [owner_ref(case)],
        "payload": [{"contentString": body}],
    }
    comm_id = ctx.connectors.ehr.create(
        communication, idempotency_key=f"{ctx.idempotency_key}:comm"
    )
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
            ctx.connectors.ehr.create(
                _linked(doc, case), idempotency_key=f"{ctx.idempotency_key}:{n}"
            )
        )
    communication: dict[str, Any] = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": INBOUND_MESSAGE, "value": args.inbound_id}],
        "basedOn": [{"reference": f"Task/{args.task_id}"}],
        "category": [{"text": "reply to document request"}],
        "medium": [{"coding": [{"system": PARTICIPATION_MODE, "code": MEDIUM[args.channel]}]}],
        "subject": {"reference": patient_ref(case)},
        "received": args.received_at.isoformat(),
        "sender": {**owner_ref(case), "display": f"{args.channel} {args.sender}"},
    }
    if ids:
        communication["payload"] = [
            {"contentReference": {"reference": f"DocumentReference/{d}"}} for d in ids
        ]
    comm_id = ctx.connectors.ehr.create(communication, idempotency_key=ctx.idempotency_key)
    return {"communication": f"Communication/{comm_id}", "documents": ids}


@tool(
    scope="ehr:Task.write",
    effect="reversible",
    phi={"referral"},
    public=("task_id", "outcome", "reason"),
    key=("task_id", "outcome"),
    facts=close_facts,
    audit_detail=lambda a, r: {"task": a.task_id, "outcome": a.outcome},
)
def close_document_request(ctx: ToolContext, args: CloseRequestArgs) -> dict[str, Any]:
    """Close a document request. ``completed`` records the referring office's fulfilment (the
    performer's status, backed by its reply on record); ``cancelled`` is ours, as requester,
    when we withdraw the request and hand it to people."""
    role: Literal["performer", "requester"] = (
        "performer" if args.outcome == "completed" else "requester"
    )
    task = ctx.connectors.ehr.set_task_status(
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
        "input": [item_input(i) for i in args.items] or None,
    }
    task = {k: v for k, v in task.items() if v is not None}
    task_id = ctx.connectors.ehr.create(task, idempotency_key=ctx.idempotency_key)
    return {"task": f"Task/{task_id}", "owner": args.owner}


# --- the decision and what follows -----------------------------------------------------------


def _ensure_referral_task(ctx: ToolContext, case: ReferralCase) -> tuple[str, bool]:
    task_id = referral_task_id(ctx, case)
    if task_id is not None:
        if ehr_read(ctx, "Task", task_id) is None:
            copy = case_resource(ctx.case, "Task", task_id)
            if copy is not None:
                ctx.connectors.ehr.create(copy, idempotency_key=f"{ctx.idempotency_key}:copy")
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
        "requester": owner_ref(case),
    }
    if case.performer is not None and case.performer.id:
        task["owner"] = {"reference": f"{case.performer.get_resource_type()}/{case.performer.id}"}
    created = ctx.connectors.ehr.create(task, idempotency_key=f"{ctx.idempotency_key}:task")
    return created, True


@tool(
    scope="ehr:Task.status",
    effect="reversible",
    phi={"referral"},
    public=("status", "reason", "open_issues"),
    key=("status",),
    facts=status_facts,
    audit_detail=lambda a, r: {"task": r["task"], "status": a.status},
)
def set_referral_status(ctx: ToolContext, args: ReferralStatusArgs) -> dict[str, Any]:
    """Accept or reject the referral: move its Task to ``accepted`` or ``rejected`` as the
    performer (SDOH referral Task permissions), with the reason as statusReason. When the
    referral came without a Task, one mirroring the order (status requested) is recorded
    first."""
    case = case_of(ctx)
    task_id, created = _ensure_referral_task(ctx, case)
    ctx.connectors.ehr.set_task_status(
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
    facts=route_facts,
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
    task_id = ctx.connectors.ehr.create(task, idempotency_key=ctx.idempotency_key)
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
    create_referral_from_fax,
)
"""The tools of the referral chaser."""

PACKET_TOOLS = (list_documents_on_file, set_referral_status)
"""The tools of the packet builder."""
