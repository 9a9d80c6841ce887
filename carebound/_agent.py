"""What an agent is to the runner: tools, a planner, and a packet builder.

Agents only *propose*. A planner looks at what happened so far and returns a :class:`Plan`:
calls to propose, a wait, or a finish. Every proposed call then passes the gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound.approvals import DecisionPacket
from carebound.guardrails import PolicyPack, PolicyVerdict
from carebound.tools import FactValue, ToolSpec

ArgsT = TypeVar("ArgsT", bound=BaseModel)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from carebound.assist import ModelCall, ModelConfig


AGENT_NAME_MAX = 64
"""The longest agent name."""


def agent_name_problem(name: object) -> str | None:
    """What keeps ``name`` from naming an agent (None: nothing): it is a non-empty string of at
    most :data:`AGENT_NAME_MAX` printable characters, without surrounding spaces, since it is
    shown to reviewers, listed in order and kept in every run's record."""
    if not isinstance(name, str):
        return f"agent name {name!r} must be a string, not {type(name).__name__}"
    if not name or len(name) > AGENT_NAME_MAX or not name.isprintable() or name != name.strip():
        return (
            f"agent name {name.encode('unicode_escape').decode('ascii')[:80]!r} must be 1 to "
            f"{AGENT_NAME_MAX} printable characters without surrounding spaces"
        )
    return None


def request_match(request_id: str) -> str:
    """The event match key of replies to an outreach request (``deliver`` uses it)."""
    return f"request:{request_id}"


class ProposedCall(BaseModel):
    """A tool call an agent proposes. Nothing in it is trusted."""

    model_config = ConfigDict(frozen=True)

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    why: str = ""


class WaitSpec(BaseModel):
    """Park the run until an event arrives or a time passes (whichever first)."""

    model_config = ConfigDict(frozen=True)

    reason: str
    until: datetime | None = Field(default=None, description="Wake at this run-clock time.")
    match: list[str] = Field(
        default_factory=list, description="Event match keys this run waits for."
    )


class FinishSpec(BaseModel):
    """End the run."""

    model_config = ConfigDict(frozen=True)

    status: Literal["completed", "failed"] = "completed"
    summary: str = ""


class Plan(BaseModel):
    """A planner's answer for one turn: exactly one of ``calls`` (one or more), ``wait`` or
    ``finish``, with the run's findings and the planner's memory when they change.

    A Plan with two of them, or none, is refused when it is built (a ``ValidationError``
    naming what was given): the engine never guesses which one the planner meant."""

    model_config = ConfigDict(frozen=True)

    calls: list[ProposedCall] = Field(default_factory=list)
    wait: WaitSpec | None = None
    finish: FinishSpec | None = None
    findings: dict[str, Any] | None = Field(
        default=None, description="Replaces the run's findings (JSON) when given."
    )
    memory: dict[str, Any] | None = Field(
        default=None, description="Replaces the planner's memory (JSON) when given."
    )

    @model_validator(mode="after")
    def _exactly_one_move(self) -> Plan:
        given = [
            name
            for name, present in (
                ("calls", bool(self.calls)),
                ("wait", self.wait is not None),
                ("finish", self.finish is not None),
            )
            if present
        ]
        if len(given) != 1:
            what = " and ".join(given) if given else "none of them"
            raise ValueError(
                f"a Plan says exactly one of calls (at least one), wait or finish; got {what} "
                "(to end the run, give finish=FinishSpec(...))"
            )
        return self


class CallResult(BaseModel):
    """What became of one proposed call; fed back to the planner."""

    model_config = ConfigDict(frozen=True)

    index: int
    tool: str
    args: dict[str, Any]
    status: Literal["executed", "denied", "rejected", "error", "expired"]
    result: Any = None
    reason: str | None = None
    approval_id: str | None = None


class RunEvent(BaseModel):
    """Something that arrived for a waiting run: a delivered event or a timer."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["event", "timer"]
    match: str | None = None
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)


class ToolReader(Protocol):
    """Runs a read tool (``effect="read"``) for a planner or a packet builder: the agent's grant
    is checked and the read recorded in the run's audit trail."""

    def __call__(self, tool: ToolSpec[ArgsT], args: ArgsT, /) -> Any:
        """The tool's result; raises ``ReadDeniedError`` when the grant lacks its scope."""
        ...


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """What a planner and a packet builder may read about their run. They never reach the
    connectors themselves: other systems are read through ``read`` (audited read tools)."""

    run_id: str
    agent: str
    now: datetime
    requester: str
    pack: PolicyPack
    case: Mapping[str, Any] = field(default_factory=dict)
    read: ToolReader
    """Reads other systems through a read tool: ``ctx.read(list_documents_on_file, NoArgs())``."""
    model: BaseChatModel | None = None
    """A langchain-core chat model when one is configured; None runs on rules."""
    models: ModelConfig | None = None
    """The chat models per task (``carebound.assist``); None or empty: every task on rules."""
    record_model_call: Callable[[ModelCall], None] = field(default=lambda _call: None)
    """Appends a model call's audit event to the run's trail (``carebound.assist.call`` uses
    it); the default records nothing (a context built outside the engine)."""


@dataclass(frozen=True, kw_only=True)
class PlannerView:
    """The run so far, as the planner sees it."""

    results: list[CallResult]
    events: list[RunEvent]
    findings: dict[str, Any]
    memory: dict[str, Any]
    turn: int


class Planner(Protocol):
    """Decides the next proposals; rule-based by default, a model when configured."""

    def __call__(self, ctx: AgentContext, view: PlannerView) -> Plan:
        """Return the next plan."""
        ...


PacketBuilder = Callable[
    [AgentContext, ProposedCall, PolicyVerdict, Mapping[str, FactValue]], DecisionPacket
]


@dataclass(frozen=True, kw_only=True)
class AgentDefinition:
    """An agent: its tools, its planner, and how it explains a hold to a reviewer."""

    name: str
    version: str
    description: str
    tools: Mapping[str, ToolSpec[Any]]
    planner: Planner
    packet: PacketBuilder | None = None
    category: str = "operations"
    """Audit data category of the agent's work (e.g. 'referral-documents')."""
    patient_ref: Callable[[Mapping[str, Any]], str | None] | None = None
    """How to find the patient reference in a case (for the audit trail)."""
