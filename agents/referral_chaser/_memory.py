"""What the referral chaser remembers between turns (``memory["chase"]``), what is still
missing, and how each turn's tool results and events update that memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._agent import (
    CallResult,
    PlannerView,
)
from carebound._errors import CareboundError
from carebound.agents._referral import (
    ChaseSettings,
    attempt_times,
    handover_time,
)
from carebound.domain.documents import (
    UNKNOWN,
    Classification,
    MissingItem,
    missing_documents,
)
from carebound.fhir import ReferralCase
from carebound.tools.connectors import Channel, InboundDocument
from carebound.tools.referral import (
    CHASE_TOOLS,
    Contact,
    SecondOpinion,
    classify_resource,
    parse_document,
    typed_codes,
)

TOOLS = {t.name: t for t in CHASE_TOOLS}
MEMORY_KEY = "chase"


Origin = Literal["case", "ehr", "reply"]
"""Where a document came from: the referral, the EHR, or a reply to outreach."""


class DocState(BaseModel):
    """A document the chaser knows of, and where its filing stands."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """The DocumentReference id (or, for an id-less case document, its Bundle key)."""
    origin: Origin
    resource: dict[str, Any] = Field(default_factory=dict)
    """The DocumentReference JSON (EHR and reply documents; case ones are read from the case)."""
    typed: list[str] = Field(default_factory=list)
    """Its LOINC types as it came."""
    guess: str | None = None
    """For an untyped document: the classifier's code (None: unknown)."""
    confidence: float = 0.0
    injection: bool = False
    """The text addresses software (instructions were found and ignored)."""
    filing: Literal["none", "todo", "proposed", "filed", "declined"] = "none"
    code: str | None = None
    """The type it counts as once filed (as proposed, or as a reviewer edited it)."""
    request_id: str | None = None
    asked: bool = False
    """Whether the classify model was asked about this document (once per document)."""
    opinion: SecondOpinion | None = None
    """The classify model's reading (None: no model, or no usable answer)."""


class Reply(BaseModel):
    """A reply received for the open request."""

    inbound_id: str
    channel: Channel
    sender: str
    received_at: datetime
    documents: list[str]
    recorded: Literal["todo", "proposed", "done"] = "todo"


class ChaseRequest(BaseModel):
    """The one document request of a run."""

    task_id: str
    channel: Channel
    to: str
    on_file: bool
    opened: bool = False
    attempts: int = 0
    first_sent: datetime | None = None
    due: datetime | None = None
    """When the next attempt (or the hand-over) is due."""
    closing: Literal["", "completed", "cancelled"] = ""
    closed: bool = False


class ChaseMemory(BaseModel):
    """The chaser's memory (``memory["chase"]``), JSON in the checkpoint."""

    last_result: int = -1
    events_seen: int = 0
    read: Literal["no", "asked", "done"] = "no"
    contacts: list[Contact] = Field(default_factory=list)
    docs: list[DocState] = Field(default_factory=list)
    request: ChaseRequest | None = None
    replies: list[Reply] = Field(default_factory=list)
    escalate_reason: str = ""
    escalation: Literal["", "proposed", "done"] = ""
    escalation_task: str = ""
    outcome: Literal["", "completed", "escalated", "failed"] = ""
    summary: str = ""
    notes: list[str] = Field(default_factory=list)


# --- what is missing -------------------------------------------------------------------------


def _evidence(
    case: ReferralCase, mem: ChaseMemory
) -> tuple[ReferralCase, dict[str, Classification]]:
    """The case with every document on file or received, and the classifications to use."""
    classified: dict[str, Classification] = {}
    extra = []
    for doc in mem.docs:
        if doc.filing == "declined":
            continue
        if doc.filing == "filed" and doc.code and not doc.typed:
            classified[doc.id] = Classification(code=doc.code, display=doc.code, confidence=1.0)
        elif not doc.typed and doc.guess:
            classified[doc.id] = Classification(
                code=doc.guess, display=doc.guess, confidence=doc.confidence
            )
        if doc.origin != "case":
            extra.append(parse_document(doc.resource, source=f"DocumentReference/{doc.id}"))
    declined = {d.id for d in mem.docs if d.filing == "declined"}
    kept = tuple(d for d in case.documents if case.document_key(d) not in declined)
    return dataclasses.replace(case, documents=kept + tuple(extra)), classified


def missing_now(
    case: ReferralCase, mem: ChaseMemory, settings: ChaseSettings
) -> list[tuple[MissingItem, str]]:
    """What the referral still misses, with the id of the requirement each item fails."""
    evidence, classified = _evidence(case, mem)
    by_code = {r.code: r.id for r in settings.requirements}
    items = missing_documents(evidence, settings.requirements, classified=classified)
    return [(item, by_code.get(item.code, "")) for item in items]


def missing_items(missing: Sequence[tuple[MissingItem, str]]) -> list[dict[str, str]]:
    """What is missing as request items (LOINC code and display), in order."""
    return [{"code": m.code, "display": m.display} for m, _ in missing]


# --- absorbing what happened -----------------------------------------------------------------


def _doc(mem: ChaseMemory, doc_id: str) -> DocState | None:
    return next((d for d in mem.docs if d.id == doc_id), None)


def _add_doc(
    mem: ChaseMemory, resource: Mapping[str, Any], origin: Origin, request: str | None
) -> None:
    doc_id = str(resource.get("id") or "")
    if not doc_id or _doc(mem, doc_id) is not None:
        return
    typed = typed_codes(resource)
    state = DocState(
        id=doc_id,
        origin=origin,
        resource=dict(resource),
        typed=typed,
        filing="todo" if (origin == "reply" or not typed) else "none",
        request_id=request,
    )
    if not typed:
        _classify_into(state, resource)
    mem.docs.append(state)


def _classify_into(state: DocState, resource: Mapping[str, Any]) -> None:
    """The classifier's reading of an untyped document (the planner's guess only: the
    ``file_document`` tool computes its own facts)."""
    try:
        result = classify_resource(resource, source=f"DocumentReference/{state.id}")
    except CareboundError:
        result = Classification(code=UNKNOWN, display="unreadable", confidence=0.0)
    state.guess = None if result.code == UNKNOWN else result.code
    state.confidence = result.confidence
    state.injection = result.injection_suspected


def seed_case_docs(mem: ChaseMemory, case: ReferralCase) -> None:
    """Remember every document the referral itself carries (origin ``case``)."""
    for doc in case.documents:
        key = case.document_key(doc)
        if _doc(mem, key) is not None:
            continue
        resource = doc.model_dump(mode="json", exclude_none=True)
        typed = typed_codes(resource)
        state = DocState(id=key, origin="case", typed=typed)
        if not typed and doc.status != "entered-in-error":
            _classify_into(state, resource)
            state.filing = "todo" if doc.id else "none"
        mem.docs.append(state)


def _absorb_result(mem: ChaseMemory, r: CallResult, settings: ChaseSettings) -> None:
    ok = r.status == "executed"
    why = r.reason or r.status
    if r.tool == "list_documents_on_file":
        if ok:
            for resource in (r.result or {}).get("documents", []):
                _add_doc(mem, resource, "ehr", None)
        else:
            mem.notes.append(f"documents on file not read ({why})")
    elif r.tool == "list_contacts_on_file":
        if ok:
            result = r.result or {}
            for raw in [*result.get("on_file", []), *result.get("from_referral", [])]:
                mem.contacts.append(Contact.model_validate(raw))
        else:
            mem.notes.append(f"contacts on file not read ({why})")
    elif r.tool == "file_document":
        doc = _doc(mem, str(r.args.get("document_id")))
        if doc is not None:
            doc.filing = "filed" if ok else "declined"
            doc.code = r.args.get("code") if ok else None
            if not ok:
                mem.notes.append(f"document {doc.id} not filed ({r.status}: {why})")
    elif r.tool == "record_reply":
        for reply in mem.replies:
            if reply.inbound_id == r.args.get("inbound_id"):
                reply.recorded = "done"
        if not ok:
            mem.notes.append(f"reply {r.args.get('inbound_id')} not recorded ({why})")
    elif r.tool == "open_document_request" and mem.request is not None:
        if ok:
            mem.request.opened = True
        else:
            mem.escalate_reason = f"the document request could not be opened ({r.status}: {why})."
    elif r.tool == "send_request_attempt" and mem.request is not None:
        _absorb_attempt(mem, r, settings)
    elif r.tool == "close_document_request" and mem.request is not None:
        mem.request.closed = True
        if not ok:
            mem.notes.append(f"request not closed ({why})")
    elif r.tool == "escalate_to_staff":
        if ok:
            mem.escalation = "done"
            mem.escalation_task = str((r.result or {}).get("task", ""))
        else:
            mem.outcome = "failed"
            mem.summary = f"could not hand the chase to people ({r.status}): {why}"


def _absorb_attempt(mem: ChaseMemory, r: CallResult, settings: ChaseSettings) -> None:
    request = mem.request
    assert request is not None
    if r.status != "executed":
        verb = {"rejected": "declined by the reviewer", "expired": "not decided in time"}.get(
            r.status, f"refused ({r.status})"
        )
        mem.escalate_reason = (
            f"outreach attempt {r.args.get('attempt')} by {r.args.get('channel')} was {verb}"
            + (" (their reason is in the decision record)." if r.status == "rejected" else ".")
        )
        return
    request.attempts = int(r.args.get("attempt", request.attempts + 1))
    request.channel = r.args.get("channel", request.channel)
    request.to = r.args.get("to", request.to)
    sent = datetime.fromisoformat(str((r.result or {}).get("sent_at")))
    if request.first_sent is None:
        request.first_sent = sent
    schedule = settings.outreach
    times = attempt_times(request.first_sent, schedule)
    if request.attempts < schedule.attempts:
        request.due = times[request.attempts]
    else:
        request.due = handover_time(request.first_sent, schedule)


def _absorb_event(mem: ChaseMemory, payload: Mapping[str, Any]) -> None:
    try:
        inbound = InboundDocument.model_validate(payload)
    except ValidationError:
        mem.notes.append("an event that is not an inbound message was ignored")
        return
    request = mem.request
    if request is None or inbound.request_id != request.task_id:
        mem.notes.append(f"reply {inbound.inbound_id} does not answer this run's request")
        return
    if any(r.inbound_id == inbound.inbound_id for r in mem.replies):
        return
    ids = []
    for received in inbound.documents:
        _add_doc(mem, received.resource, "reply", request.task_id)
        ids.append(str(received.resource.get("id")))
    mem.replies.append(
        Reply(
            inbound_id=inbound.inbound_id,
            channel=inbound.channel,
            sender=inbound.sender,
            received_at=inbound.received_at,
            documents=ids,
        )
    )


def absorb(mem: ChaseMemory, view: PlannerView, settings: ChaseSettings) -> None:
    """Update the memory with the tool results and events that are new since the last turn."""
    for r in view.results:
        if r.index > mem.last_result and r.tool in TOOLS:
            _absorb_result(mem, r, settings)
            mem.last_result = r.index
    for event in view.events[mem.events_seen :]:
        if event.kind == "event":
            _absorb_event(mem, event.payload)
    mem.events_seen = len(view.events)
