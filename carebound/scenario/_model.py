"""The scenario file format (YAML). Paths inside a scenario are relative to the file.

See README "Scenarios" for a full example. Keys:

- ``agent``: the agent to run; ``requester``: who starts it (may not approve its holds).
- ``case``: a FHIR Bundle (JSON) with the incoming referral.
- ``policy``: a pack name or path (default ``default``).
- ``world``: the simulated systems: ``ehr`` and ``payer`` (FHIR Bundle paths), ``replies``
  (scripted answers to outreach), ``erp`` (a JSON file of purchase orders, receipts, invoices).
- ``decisions``: reviewer decisions applied, in order, to holds that match them.
- ``start``: the virtual clock's start, with a time zone (``Z`` or ``+01:00``), 1900-2200.
- ``until``: how much virtual time the scenario may run (ISO 8601 duration, default P30D, at
  most P3660D).
- ``expect``: the outcome the scenario asserts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound._limits import BoundedDuration, BoundedInstant
from carebound.tools.connectors import ReplyScript


class ScenarioWorld(BaseModel):
    """The simulated systems a scenario runs against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ehr: str | None = Field(default=None, description="FHIR Bundle the EHR already holds.")
    payer: str | None = Field(default=None, description="FHIR Bundle the payer answers from.")
    replies: list[ReplyScript] = Field(
        default_factory=list, description="Scripted replies to outreach."
    )
    erp: str | None = Field(default=None, description="JSON file of ERP records.")


class DecisionMatch(BaseModel):
    """Which hold a scripted decision applies to (every condition given must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str | None = None
    rule: str | None = None
    role: str | None = None


class ScriptedDecision(BaseModel):
    """A reviewer decision the scenario applies when the run holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: DecisionMatch = Field(default_factory=DecisionMatch)
    decision: Literal["approve", "reject", "edit", "escalate"]
    reviewer: str
    role: str
    reason: str | None = None
    note: str | None = None
    set: dict[str, Any] = Field(default_factory=dict, description="Argument changes (edit).")
    to_role: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ScriptedDecision:
        if self.decision == "reject" and not self.reason:
            raise ValueError("a reject decision needs a reason")
        if self.decision == "edit" and not self.set:
            raise ValueError("an edit decision needs 'set' with the changed arguments")
        if self.decision == "escalate" and not self.to_role:
            raise ValueError("an escalate decision needs 'to_role'")
        return self


class ExpectedMismatch(BaseModel):
    """A mismatch the run must report (values are not compared)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    risk: Literal["low", "high"] | None = None
    action: Literal["auto_fixed", "held"] | None = None


class ExpectedPending(BaseModel):
    """A hold the run must be parked on at the end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str | None = None
    required_role: str | None = None


class Expectation(BaseModel):
    """The outcome a scenario asserts. Only the keys given are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str | None = Field(
        default=None,
        description="The scenario's input must be refused with an error containing this text "
        "(a malformed bundle, an unknown code, ...); nothing runs.",
    )
    status: str | None = None
    missing_documents: list[str] | None = Field(
        default=None, description="Exactly these document codes are missing at the end."
    )
    mismatches: list[ExpectedMismatch] | None = Field(
        default=None, description="These mismatches are reported (others may be too)."
    )
    mismatch_count: int | None = Field(default=None, description="Exactly this many mismatches.")
    effects: dict[str, int] | None = Field(
        default=None, description="Tool -> exact number of completed effects."
    )
    pending: list[ExpectedPending] | None = None
    summary_contains: str | None = None
    denied_tools: list[str] | None = Field(
        default=None, description="These tools were proposed and denied by the gate."
    )


class Scenario(BaseModel):
    """A scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    agent: str
    requester: str = "scenario-operator"
    case: str
    policy: str = "default"
    start: BoundedInstant = Field(
        default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        description="Virtual clock start; needs a time zone (2026-03-02T09:00:00Z).",
    )
    until: BoundedDuration = Field(
        default=timedelta(days=30), description="Virtual time the scenario may run."
    )
    world: ScenarioWorld = Field(default_factory=ScenarioWorld)
    decisions: list[ScriptedDecision] = Field(default_factory=list)
    expect: Expectation | None = None
