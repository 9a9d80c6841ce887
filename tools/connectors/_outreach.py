"""Outreach: ask a referring office for documents by fax, portal, email or phone; receive replies.

:class:`OutreachConnector` is the interface. The simulated one
(:mod:`carebound.tools.connectors.simulated`) answers from :class:`ReplyScript` entries the
world is seeded with: a send that matches one schedules the reply on the virtual clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from carebound._limits import BoundedDuration
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource, validate_resource

Channel = Literal["fax", "portal", "email", "phone"]
"""How a request goes out or a reply comes in."""

LOINC = "http://loinc.org"
INBOUND_ID_SYSTEM = "urn:carebound:inbound"
"""Identifier system of the inbound message a received DocumentReference came in."""


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
        require_aware(received_at, "received_at")
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


def require_aware(moment: dt.datetime, name: str) -> None:
    """Refuse a naive datetime (every outreach time is aware: replies are ordered across zones)."""
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
