"""The audit trail's persisted shapes: who did what to which patient's data, and with what outcome.

The fields follow ASTM E2147 (time, actor, patient, action, data category, outcome) so the trail
answers the questions HIPAA audit controls (45 CFR 164.312(b)) ask of a review.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from carebound.audit._errors import AuditDetailError

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of every run's chain."""

MAX_DETAIL_CHARS = 200
"""Longest string value allowed in ``AuditEvent.detail``: enough for ids, hashes and fixes."""

MAX_DETAIL_KEYS = 32
"""Most keys allowed in ``AuditEvent.detail``."""

AuditAction = Literal[
    "create",
    "read",
    "update",
    "delete",
    "execute",
    "export",
    "disclose",
    "permission_check",
    "hold",
    "decision",
    "deny",
    "budget_stop",
    "effect",
    "view_phi",
    "event",
    "model_call",
]
"""What was done. CRUD-style data actions plus the gate's own steps (permission check, hold,
reviewer decision, denial, budget stop, external effect, PHI view); ``model_call`` for a call to
a chat model (``carebound.assist``); ``event`` for anything else."""

AuditOutcome = Literal["success", "denied", "held", "failed", "refused", "pending"]
"""How the action ended."""

DetailValue = str | int | float | bool | None

# A FHIR relative reference ("Patient/123", "Patient/123/_history/2") or a urn:uuid: reference.
# Nothing that could carry a name or other free text fits this pattern.
_FHIR_REFERENCE = (
    r"^(?:[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_HEX_SHA256 = r"^[0-9a-f]{64}$"


def check_detail(detail: dict[str, DetailValue]) -> None:
    """Reject detail that is more than a few small, flat values.

    Raises:
        AuditDetailError: a value is longer than ``MAX_DETAIL_CHARS``, a float is not finite,
            or there are more than ``MAX_DETAIL_KEYS`` keys.
    """
    hint = (
        "audit events carry references, ids and hashes, never documents or PHI: record "
        "e.g. a DocumentReference id or the sha256 of the content instead"
    )
    if len(detail) > MAX_DETAIL_KEYS:
        raise AuditDetailError(
            f"audit detail has {len(detail)} keys; at most {MAX_DETAIL_KEYS} are allowed",
            hint=hint,
        )
    for key, value in detail.items():
        if not key or len(key) > MAX_DETAIL_CHARS:
            raise AuditDetailError(
                f"audit detail key {key[:40]!r} must be 1 to {MAX_DETAIL_CHARS} characters",
                hint=hint,
            )
        if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
            raise AuditDetailError(
                f"audit detail[{key!r}] is {len(value)} characters long; values are limited "
                f"to {MAX_DETAIL_CHARS}",
                hint=hint,
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise AuditDetailError(
                f"audit detail[{key!r}] is {value}; only finite numbers can be recorded",
                hint="record the value as a string or leave it out",
            )


DETAIL_CHECKED: dict[str, bool] = {"detail_checked": True}
"""The validation context of an event whose detail the caller checked with ``check_detail``
already (``Draft.of``, so a bad detail raises ``AuditDetailError`` itself): not checked twice."""


class Actor(BaseModel):
    """Who acted: an agent, a person (a reviewer, a clerk) or the system itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["agent", "person", "system"] = Field(description="What sort of actor this is.")
    id: str = Field(
        min_length=1,
        max_length=MAX_DETAIL_CHARS,
        description="Stable id of the actor: agent name, user id or component name. No names.",
    )
    role: str | None = Field(
        default=None,
        max_length=MAX_DETAIL_CHARS,
        description="The role the actor acted in, e.g. 'scheduler' or 'utilization-reviewer'.",
    )


class AuditEvent(BaseModel):
    """One entry of a run's append-only, hash-chained audit trail.

    An event never holds PHI beyond a FHIR reference to the patient: ``detail`` is for tool
    names, approval ids, argument hashes and the before/after of low-risk fixes the caller
    chooses to record. String values in ``detail`` are limited to ``MAX_DETAIL_CHARS``.

    ``hash`` is the sha256 (hex) of the canonical JSON of every other field but ``mac``, and
    ``prev_hash`` is the ``hash`` of the event before it in the run (``GENESIS_HASH`` for ``seq``
    1), so altering, removing or reordering an event breaks the chain. ``mac`` keys the chain:
    it is the HMAC of ``hash`` under the audit key ``key_id``, so a chain rewritten with
    recomputed hashes does not verify without that key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(
        min_length=1, description="The run (LangGraph thread) the event belongs to."
    )
    seq: int = Field(ge=1, description="Position in the run's chain, 1-based, without gaps.")
    time: AwareDatetime = Field(
        description="When it happened, in UTC, from the caller's (possibly virtual) clock."
    )
    actor: Actor = Field(description="Who acted.")
    patient_ref: str | None = Field(
        default=None,
        pattern=_FHIR_REFERENCE,
        description="FHIR reference to the patient, e.g. 'Patient/123'; never a name.",
    )
    action: AuditAction = Field(description="What was done.")
    category: str = Field(
        min_length=1,
        max_length=64,
        description="Data category touched, e.g. 'demographics', 'referral-documents', 'coverage'.",
    )
    outcome: AuditOutcome = Field(description="How the action ended.")
    detail: dict[str, DetailValue] = Field(
        default_factory=dict,
        description="Small flat detail chosen by the caller (tool name, approval id, args hash).",
    )
    key_id: str | None = Field(
        default=None,
        max_length=32,
        description="Id of the audit key that signed the event (see ``AuditKeyring``); None "
        "only on events written before the trail was keyed, which no longer verify.",
    )
    prev_hash: str = Field(pattern=_HEX_SHA256, description="``hash`` of the previous event.")
    hash: str = Field(
        pattern=_HEX_SHA256, description="sha256 of this event without ``hash`` and ``mac``."
    )
    mac: str | None = Field(
        default=None,
        pattern=_HEX_SHA256,
        description="HMAC-SHA256 of ``hash`` under the key ``key_id``: only a holder of the "
        "audit key can write an event that verifies.",
    )

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("detail")
    @classmethod
    def _small_detail(
        cls, value: dict[str, DetailValue], info: ValidationInfo
    ) -> dict[str, DetailValue]:
        if info.context is not DETAIL_CHECKED:
            check_detail(value)
        return value


class VerifyResult(BaseModel):
    """The outcome of checking one run's chain."""

    model_config = ConfigDict(frozen=True)

    ok: bool = Field(description="True when the chain is intact and matches its stored head.")
    count: int = Field(description="Number of entries in the run's audit stream.")
    problems: list[str] = Field(
        default_factory=list,
        description="One line per problem: which seq or stream entry is wrong, and how.",
    )
    checkpoints: int = Field(
        default=0,
        description="Exported checkpoints (``carebound audit export``) the chain was checked "
        "against; 0 when no anchors file was given or it holds none for the run.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What is worth knowing but is no tamper: e.g. the run's anchor a few "
        "signed events behind its chain (a recorder stopped between its two steps on a Redis "
        "Cluster; the run's next event brings it up).",
    )


class AuditIndexEntry(BaseModel):
    """One entry of the global audit index, for review across runs."""

    model_config = ConfigDict(frozen=True)

    entry_id: str = Field(description="Stream id in the global index; pass as ``after`` to page.")
    event: AuditEvent = Field(description="The event as recorded in its run's chain.")


class AuditCheckpoint(BaseModel):
    """One line of an anchors file written by ``carebound audit export``: a run's chain head,
    signed with the audit key, appended to a file kept outside Redis.

    A later ``carebound audit RUN --verify --anchors FILE`` checks that the run's chain still
    holds the event at ``seq`` with ``hash``: cutting the tail, rewriting or replacing the chain
    after the export shows even when everything in Redis was rewritten consistently. Each line
    links to the one before it (``prev``), so removing or editing lines of the file shows too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["audit-checkpoint"] = Field(description="What the line is.")
    run_id: str = Field(min_length=1, description="The run whose chain head this is.")
    seq: int = Field(ge=1, description="The seq of the run's last event at export.")
    hash: str = Field(pattern=_HEX_SHA256, description="That event's hash.")
    exported_at: AwareDatetime = Field(description="When the checkpoint was written (UTC).")
    prev: str = Field(
        pattern=_HEX_SHA256,
        description="sha256 of the file's previous line (``GENESIS_HASH`` on the first line).",
    )
    key_id: str = Field(max_length=32, description="Id of the audit key that signed the line.")
    mac: str = Field(
        pattern=_HEX_SHA256,
        description="HMAC-SHA256 of the line's canonical JSON without ``mac``, under ``key_id``.",
    )


class AuditTrail(BaseModel):
    """A run's audit trail as read in one step: the events that could be read, and the
    result of checking the chain (an unreadable entry is a broken chain, not an error)."""

    model_config = ConfigDict(frozen=True)

    events: list[AuditEvent] = Field(description="The readable events, in stream order.")
    verify: VerifyResult = Field(description="Whether the chain holds, and what is wrong.")
