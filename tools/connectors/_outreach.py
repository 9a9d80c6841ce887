"""Outreach: ask a referring office for documents by fax, portal, email or phone; receive replies.

:class:`OutreachConnector` is the interface; :class:`SimulatedOutreach` keeps a run's sent
messages and inbox in Redis. Its replies are scripted: the world is seeded with
:class:`ReplyScript` entries, and a send that matches one schedules the reply on the virtual
clock. :meth:`SimulatedOutreach.due_replies` hands each reply out exactly once, however many
workers poll.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, get_args

import redis
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from carebound._limits import BoundedDuration
from carebound.state.keys import DEFAULT_PREFIX
from carebound.state.lua import script as lua_script
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource, validate_resource
from carebound.tools.connectors._redis_state import (
    ConnectorState,
    EffectRecord,
    GuardFailed,
    WriteBatch,
    text,
)

Channel = Literal["fax", "portal", "email", "phone"]
"""How a request goes out or a reply comes in."""

LOINC = "http://loinc.org"
INBOUND_ID_SYSTEM = "urn:carebound:inbound"
"""Identifier system of the inbound message a received DocumentReference came in."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CLAIM_DUE = lua_script("outreach_claim_due")


class ScriptedDocument(BaseModel):
    """A document a scripted reply carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str | None = None
    """Its LOINC document code (e.g. ``11506-3`` progress note); None for an untyped fax."""
    display: str | None = None
    """Its title or code display, e.g. ``"Progress note"``."""
    text: str
    """Its text content (the classifier reads this)."""
    date: dt.date | None = None
    """When the document was written (stored as ``content.attachment.creation``)."""


class ReplyScript(BaseModel):
    """How a simulated recipient answers a request: which sends, how soon, with what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str = "*"
    """The recipient it answers for (fax number, address, ...) or ``"*"`` for any."""
    after: BoundedDuration
    """How long after the matching send the reply arrives (virtual clock)."""
    documents: list[ScriptedDocument] = Field(min_length=1)
    """The documents in the reply."""
    attempt: int | None = Field(default=None, ge=1)
    """Answer only the Nth attempt for a request (sends with the same ``request_id``, any
    channel, counting from 1); None means the first."""
    reply_channel: Channel | None = None
    """The channel the reply comes back on; None means the channel of the send."""


class OutreachReceipt(BaseModel):
    """Proof that a message went out."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    """The sending system's id for the message."""
    channel: Channel
    to: str
    request_id: str
    """The request (e.g. the document-request Task id) this message chases."""
    attempt: int
    """Which attempt for ``request_id`` this was, from 1."""
    sent_at: dt.datetime


class ReceivedDocument(BaseModel):
    """One document in an inbound message, typed fields plus its FHIR DocumentReference."""

    model_config = ConfigDict(frozen=True)

    code: str | None
    """LOINC document code, None when it came untyped (must be classified from the text)."""
    display: str | None
    text: str
    date: dt.date | None
    """When the document was written, when known."""
    resource: dict[str, Any]
    """The DocumentReference (FHIR R4 JSON, validated), content inline as base64 text."""


class InboundDocument(BaseModel):
    """An inbound message (a fax, a portal upload, ...) carrying one or more documents."""

    model_config = ConfigDict(frozen=True)

    inbound_id: str
    """Unique id of the inbound message."""
    request_id: str | None
    """The request it answers; None for an unsolicited message (match it yourself)."""
    channel: Channel
    sender: str
    """Who sent it (the number or address the request went to)."""
    received_at: dt.datetime
    documents: list[ReceivedDocument]

    @classmethod
    def build(
        cls,
        *,
        inbound_id: str,
        request_id: str | None,
        channel: Channel,
        sender: str,
        received_at: dt.datetime,
        documents: Sequence[ScriptedDocument],
    ) -> InboundDocument:
        """Build a message and a validated DocumentReference for each document.

        DocumentReference ids are ``<inbound_id>-d<n>``.

        Raises:
            ConnectorError: ``received_at`` has no time zone, or a document is not valid FHIR.
        """
        _require_aware(received_at, "received_at")
        received = [
            ReceivedDocument(
                code=doc.code,
                display=doc.display,
                text=doc.text,
                date=doc.date,
                resource=_document_reference(f"{inbound_id}-d{n}", inbound_id, doc, received_at),
            )
            for n, doc in enumerate(documents)
        ]
        return cls(
            inbound_id=inbound_id,
            request_id=request_id,
            channel=channel,
            sender=sender,
            received_at=received_at,
            documents=received,
        )


class OutreachConnector(Protocol):
    """What agents may do with outreach: send a request, and collect the replies that came in."""

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Send one request; a repeated ``idempotency_key`` returns the first receipt and sends
        nothing."""
        ...

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """Take the replies received up to ``now``; each is returned to one caller, once."""
        ...


_SCRIPTS = TypeAdapter(list[ReplyScript])


def _parse_scripts(raw: str | None) -> list[ReplyScript]:
    return [] if raw is None else _SCRIPTS.validate_json(raw)


class SimulatedOutreach:
    """Simulated fax/portal/email/phone outreach whose state lives in Redis.

    Args:
        client: a sync Redis client.
        run_id: the run whose world this is.
        prefix: the key prefix.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._state = ConnectorState(client, run_id, prefix=prefix, system="outreach")
        self._config = self._state.key("config")
        self._request_attempts = self._state.key("request_attempts")
        self._due = self._state.key("inbox", "due")
        self._items = self._state.key("inbox", "items")

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Send a request and schedule the scripted replies it triggers.

        The send, the request's attempt count and the scheduled replies are written in one
        atomic step, recorded once per ``idempotency_key``.

        Raises:
            ConnectorError: unknown channel, empty recipient or request id, or a naive ``now``.
        """
        _require_aware(now, "now")
        if channel not in get_args(Channel):
            raise ConnectorError(
                f"outreach: unknown channel {channel!r}",
                hint=f"use one of: {', '.join(get_args(Channel))}",
            )
        if not to.strip() or not request_id.strip():
            raise ConnectorError(
                "outreach: send needs a recipient (to=) and a request_id",
                hint="pass the fax number/address and the id of the request being chased",
            )
        codes = list(requested_codes)

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            count_raw, scripts_raw = values
            attempt = int(count_raw or 0) + 1
            message_id = "msg-" + self._state.derived_id("send", idempotency_key)
            receipt = OutreachReceipt(
                message_id=message_id,
                channel=channel,
                to=to,
                request_id=request_id,
                attempt=attempt,
                sent_at=now,
            )
            batch = WriteBatch()
            batch.guard(self._request_attempts, request_id, count_raw)
            batch.op("HSET", self._request_attempts, request_id, str(attempt))
            scheduled: list[JsonValue] = []
            for n, script in enumerate(_parse_scripts(scripts_raw)):
                if not _matches(script, to, attempt):
                    continue
                reply = InboundDocument.build(
                    inbound_id=f"{message_id}-r{n}",
                    request_id=request_id,
                    channel=script.reply_channel or channel,
                    sender=to,
                    received_at=now + script.after,
                    documents=script.documents,
                )
                self._schedule(batch, reply)
                scheduled.append(
                    {"inbound_id": reply.inbound_id, "due": reply.received_at.isoformat()}
                )
            payload: dict[str, JsonValue] = {
                "channel": channel,
                "to": to,
                "subject": subject,
                "body": body,
                "request_id": request_id,
                "requested_codes": list(codes),
                "attempt": attempt,
                "sent_at": now.isoformat(),
                "scheduled_replies": scheduled,
            }
            return batch, payload, receipt.model_dump(mode="json")

        reads = [(self._request_attempts, request_id), (self._config, "replies")]
        record = self._state.apply_once(idempotency_key, "send", compute, reads=reads)
        return OutreachReceipt.model_validate(record.result)

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """Atomically take every reply received up to ``now``, oldest first.

        A reply is handed out once: concurrent callers never both get it.
        """
        _require_aware(now, "now")
        raws = _CLAIM_DUE(self._state.client, [self._due, self._items], [str(_micros(now))])
        replies = [InboundDocument.model_validate_json(text(raw)) for raw in raws]
        return sorted(replies, key=lambda r: (r.received_at, r.inbound_id))

    def next_due(self) -> dt.datetime | None:
        """When the earliest reply not yet taken arrives (to advance a virtual clock), or None."""
        first = self._state.client.zrange(self._due, 0, 0, withscores=True)
        if not first:
            return None
        return _EPOCH + dt.timedelta(microseconds=int(first[0][1]))

    def inject_inbound(self, doc: InboundDocument) -> None:
        """Deliver a message at ``doc.received_at`` as if it came in (tests, scenario events).

        Idempotent on ``doc.inbound_id``: injecting the same message again does nothing.

        Raises:
            FhirValidationError: a document's DocumentReference is not valid FHIR R4.
        """
        for item in doc.documents:
            validate_resource(item.resource, where=f"outreach inbound {doc.inbound_id}")
        batch = WriteBatch()
        batch.guard(self._items, doc.inbound_id, None)
        self._schedule(batch, doc)
        try:
            self._state.apply(batch)
        except GuardFailed:
            return

    def scripts(self) -> list[ReplyScript]:
        """The reply scripts this world was seeded with."""
        return _parse_scripts(self._state.hget(self._config, "replies"))

    def seed(self, batch: WriteBatch, replies: Iterable[ReplyScript]) -> None:
        """Add the write that stores the reply scripts to a seeding batch."""
        batch.op("HSET", self._config, "replies", _SCRIPTS.dump_json(list(replies)).decode())

    def effects(self) -> list[EffectRecord]:
        """Every message sent, one per idempotency key, in order."""
        return self._state.effects()

    def attempts(self) -> int:
        """How many send calls came in, repeats included."""
        return self._state.attempts()

    def _schedule(self, batch: WriteBatch, reply: InboundDocument) -> None:
        batch.op("HSET", self._items, reply.inbound_id, reply.model_dump_json())
        batch.op("ZADD", self._due, str(_micros(reply.received_at)), reply.inbound_id)


def _matches(script: ReplyScript, to: str, attempt: int) -> bool:
    if script.to != "*" and script.to.strip().casefold() != to.strip().casefold():
        return False
    return (script.attempt or 1) == attempt


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConnectorError(
            f"outreach: {name} has no time zone",
            hint="pass an aware datetime, e.g. datetime.now(timezone.utc) or the run's clock",
        )


def _document_reference(
    doc_id: str, inbound_id: str, doc: ScriptedDocument, received_at: dt.datetime
) -> FhirResource:
    attachment: dict[str, Any] = {
        "contentType": "text/plain",
        "data": base64.b64encode(doc.text.encode()).decode(),
        "title": doc.display or "Received document",
    }
    if doc.date is not None:
        attachment["creation"] = doc.date.isoformat()
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "identifier": [{"system": INBOUND_ID_SYSTEM, "value": inbound_id}],
        "status": "current",
        "date": received_at.isoformat(),
        "content": [{"attachment": attachment}],
    }
    if doc.code is not None:
        coding = {"system": LOINC, "code": doc.code}
        if doc.display:
            coding["display"] = doc.display
        resource["type"] = {"coding": [coding]}
    if doc.display:
        resource["description"] = doc.display
    return validate_resource(json.loads(json.dumps(resource)), where=f"inbound {inbound_id}")


def _conforms(connector: SimulatedOutreach) -> OutreachConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
