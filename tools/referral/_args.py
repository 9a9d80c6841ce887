"""The referral tools' FHIR code systems and argument models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from carebound.domain.documents import DOCUMENT_TYPES
from carebound.tools.connectors import Channel
from carebound.tools.connectors._outreach import INBOUND_ID_SYSTEM

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
MEDIUM: Mapping[str, str] = {
    "fax": "FAXWRIT",
    "portal": "ONLINEWRIT",
    "email": "EMAILWRIT",
    "phone": "PHONE",
}
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_LOINC_CODE = r"^\d{1,7}-\d$"
DOCUMENT_DISPLAY = {t.code: t.display for t in DOCUMENT_TYPES}
OWN_TASK_SYSTEMS = frozenset({CDEX_TEMP, CAREBOUND_TASK})


class NoArgs(BaseModel):
    """No arguments: the referral is the run's case."""

    model_config = ConfigDict(extra="forbid")


class RequestedItem(BaseModel):
    """One thing asked of the referring office."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="LOINC document code, or coverage/prior-auth.")
    display: str = Field(min_length=1, description="Its name, e.g. 'Progress note'.")


class SecondOpinion(BaseModel):
    """A chat model's reading of an untyped document (``carebound.assist``, task ``classify``).

    A proposal only: the ``file_document`` facts cross-check it with the rule classifier, and a
    disagreement or a low confidence holds the filing (DOC-1). It can add a hold, never lift
    one. Its reading of the date, sender and patient is shown to the reviewer (masked as PHI)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    code: str = Field(max_length=20)
    """The LOINC document type the model read (or ``unknown``)."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The model's own confidence, 0..1."""
    model: str = Field(max_length=120)
    """Which model answered."""
    document_date: str | None = Field(default=None, max_length=40)
    """When the document was written, as the model read it."""
    sender: str | None = Field(default=None, max_length=200)
    """Who sent or wrote it, as the model read it."""
    patient: str | None = Field(default=None, max_length=200)
    """The patient's name and identifiers, as the model read them."""


class FileDocumentArgs(BaseModel):
    """File one document in the EHR under a document type."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(
        pattern=_FHIR_ID, description="The DocumentReference id (in the case or the EHR)."
    )
    code: str | None = Field(
        default=None, pattern=_LOINC_CODE, description="LOINC type to file it under; None: none."
    )
    second_opinion: SecondOpinion | None = Field(
        default=None,
        description="A chat model's reading of an untyped document, cross-checked by the rules.",
    )

    @model_serializer(mode="wrap")
    def _without_absent_opinion(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Without a model the arguments (and so their hash) stay what they were before models.
        data = handler(self)
        if isinstance(data, dict) and data.get("second_opinion") is None:
            data.pop("second_opinion", None)
        return data


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
    note: str | None = Field(
        default=None,
        max_length=2000,
        description="Free text between the message's rule-made parts (drafted by a model, or "
        "edited by a reviewer); None: the rule template alone. It must pass "
        "carebound.domain.drafts.check_outreach_note (rule OUT-4 refuses it otherwise).",
    )
    drafted_by: str | None = Field(
        default=None, max_length=200, description="The model that drafted ``note``, if one did."
    )


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
