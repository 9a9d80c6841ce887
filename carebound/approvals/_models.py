"""The typed shapes of a hold: the request a run parks with, the packet a reviewer reads, and
the decision a reviewer sends back (a tagged union)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound._principal import UNAUTHENTICATED_LIBRARY, Provenance
from carebound.approvals._edits import ArgChange

Risk = Literal["low", "medium", "high"]


class SourceRef(BaseModel):
    """Where a fact comes from."""

    model_config = ConfigDict(frozen=True)

    resource: str = Field(description="FHIR reference or system record, e.g. 'Patient/p1'.")
    field: str | None = Field(default=None, description="Field path inside it, e.g. 'birthDate'.")
    document: str | None = Field(default=None, description="Document (and page) it was read from.")


class PacketFact(BaseModel):
    """One fact shown to the reviewer, with its source."""

    model_config = ConfigDict(frozen=True)

    label: str
    value: str
    source: SourceRef
    phi: bool = Field(default=False, description="Masked unless the viewer reveals PHI.")
    id: str | None = Field(
        default=None, description="Short id a model-written summary cites, e.g. 'F3'."
    )


class SummarySentence(BaseModel):
    """One sentence of a model-written summary, and the ids of the facts it rests on."""

    model_config = ConfigDict(frozen=True)

    text: str
    cites: list[str] = Field(description="Fact ids, e.g. ['F1', 'F4'].")


class ModelSummary(BaseModel):
    """A plain-language summary a model wrote from the packet's facts without PHI. Every
    sentence cites the facts it rests on; sentences without a citation, citing an unknown id, or
    stating a number, date or name the cited facts lack were dropped
    (``carebound.domain.drafts.check_cited_summary``). Shown as model-written, beside the facts,
    never instead of them."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="The model that wrote it.")
    sentences: list[SummarySentence]
    dropped: int = Field(default=0, description="Sentences the checks dropped.")


class PacketCheck(BaseModel):
    """A check that passed or failed (or could not be made), citing the rule that applied it."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool | None = Field(
        description="True passed, False failed, None not verified (neither: e.g. no payer to "
        "ask); a check that was not verified never decides the recommendation."
    )
    detail: str
    rule_id: str | None = Field(default=None, description="Policy-pack rule id, if any.")
    rule_text: str | None = Field(default=None, description="That rule's wording.")


class DecisionPacket(BaseModel):
    """Everything a reviewer needs to decide in a minute, and only the PHI it needs."""

    model_config = ConfigDict(frozen=True)

    summary: str = Field(description="What is being decided, in one line.")
    facts: list[PacketFact] = Field(default_factory=list)
    checks: list[PacketCheck] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="What is still missing.")
    recommendation: Literal["approve", "reject", "edit", "none"] = "none"
    recommendation_text: str = ""
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    on_approve: str = Field(default="", description="What approving will do.")
    on_reject: str = Field(default="", description="What rejecting will do.")
    model_summary: ModelSummary | None = Field(
        default=None, description="A model's cited summary of the facts (None: no model)."
    )


class PinnedVersions(BaseModel):
    """Versions an approval was made against; a changed pack or tool is visible to reviewers."""

    model_config = ConfigDict(frozen=True)

    agent: str
    agent_version: str
    policy: str
    policy_version: str
    policy_fingerprint: str
    tool_schema: str = Field(description="Hash of the tool's args schema.")


class ApprovalRequest(BaseModel):
    """What a run parks with when a call is held for a reviewer."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    run_id: str
    agent: str
    tool: str
    args: dict[str, Any]
    args_hash: str = Field(description="Decisions are bound to this hash of tool + args.")
    original_args: dict[str, Any] | None = Field(
        default=None,
        description="The agent's proposal, once a reviewer's edit of a two-person hold replaced "
        "args (and args_hash) with the edited arguments a second person must approve.",
    )
    rule_id: str | None
    rule_text: str
    reason: str
    packet: DecisionPacket
    risk: Risk
    required_role: str
    deadline: datetime
    two_person: bool = False
    on_timeout: Literal["reject", "escalate"] = "reject"
    escalate_to: str | None = None
    pinned: PinnedVersions
    requester: str = Field(description="Who started the run; they may not approve its holds.")
    patient_ref: str | None = None
    created_at: datetime
    trace: str | None = None
    """The trace context of the drive that made the hold (W3C ``traceparent``), so the
    decision's span joins the run's trace."""


class _DecisionBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str = Field(description="Reviewer id from the pack's directory.")
    role: str = Field(description="The role the reviewer acts in.")
    args_hash: str = Field(description="The args hash the reviewer saw; stale hashes are refused.")
    note: str | None = None
    via: Provenance = Field(
        default=UNAUTHENTICATED_LIBRARY,
        description="How the decision arrived: channel, authenticated principal, token name.",
    )


class Approve(_DecisionBase):
    """Run the call as proposed."""

    kind: Literal["approve"] = "approve"


class Edit(_DecisionBase):
    """Run the call with changed arguments (re-validated and re-checked against the grant)."""

    kind: Literal["edit"] = "edit"
    args: dict[str, Any]


class Reject(_DecisionBase):
    """Do not run the call; the reason goes back to the agent."""

    kind: Literal["reject"] = "reject"
    reason: str = Field(min_length=1)


class Escalate(_DecisionBase):
    """Hand the hold to another role."""

    kind: Literal["escalate"] = "escalate"
    to_role: str


Decision = Annotated[Approve | Edit | Reject | Escalate, Field(discriminator="kind")]

ApprovalStatus = Literal["pending", "approved", "edited", "rejected", "expired", "withdrawn"]
"""Where a hold stands. ``withdrawn``: parked by a step that a process died in before the step
was stored; the step replayed on recovery did not hold the call again, so nobody decides it."""


class DecisionRecord(BaseModel):
    """The decision that settled an approval, as stored."""

    model_config = ConfigDict(frozen=True)

    status: ApprovalStatus
    decision: Decision | None = None
    decided_by: str
    decided_at: datetime
    approvers: list[str] = Field(default_factory=list)
    changes: list[ArgChange] = Field(
        default_factory=list,
        description="What was changed in the agent's proposal, before -> after (edits).",
    )


class ApprovalView(BaseModel):
    """An approval as listed in the inbox or fetched by id."""

    model_config = ConfigDict(frozen=True)

    request: ApprovalRequest
    status: ApprovalStatus
    required_role: str
    deadline: datetime
    approvers: list[str] = Field(default_factory=list)
    record: DecisionRecord | None = None
