"""A run's graph state and the signals its graph parks on, as typed shapes.

The state is checkpointed by carebound's saver through LangGraph's ``JsonPlusSerializer``
(msgpack, ``pickle_fallback=False``). Pydantic models in the state would be stored with their
import path and rebuilt from it, which ties every stored run to today's class names; so the
stored shapes are TypedDicts of JSON values (what the graph always wrote), each documented
field by field, and a checkpoint written before they were typed loads unchanged. The models a
planner sees (``ProposedCall``, ``CallResult``, ``RunEvent``, ``WaitSpec``) are built from them.

The graph parks on one of two signals, tagged by ``type``: a :class:`HoldSignal` (a call waits
for a reviewer) or a :class:`WaitSignal` (the run waits for an event or a time).
:func:`read_signal` reads either back from a checkpoint; anything else there is a clear
:class:`~carebound.RunStateError`, never a KeyError half-way through a drive.
"""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,  # pydantic reads these on Python 3.11
)

from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from carebound._errors import RunStateError


class CallData(TypedDict):
    """A proposed call as stored (``ProposedCall.model_dump(mode="json")``)."""

    tool: str
    args: dict[str, Any]
    why: str


class OutageData(TypedDict):
    """The call's system is down (see :mod:`~carebound.engine.outage`)."""

    system: str
    tries: int
    """Tries so far, the first included."""
    since: str
    """ISO 8601 time of the first failed try."""


class CurrentCall(TypedDict):
    """The call a run is making: gated, and held or about to run."""

    call: CallData
    """The call as the agent proposed it."""
    args: dict[str, Any]
    """The arguments that will run: validated by the gate, or as a reviewer edited them."""
    index: int
    """The call's number in the run (0-based); a hold's approval id ends with it."""
    approval_id: str | None
    """The hold the call waits on (None: it runs now)."""
    decided: NotRequired[str | None]
    """How its hold was decided (``approved``/``edited``), for the effect's audit event."""
    outage: NotRequired[OutageData]
    """Its system is down and the run waits to try again."""


class WaitData(TypedDict):
    """A wait as stored (``WaitSpec.model_dump(mode="json")``)."""

    reason: str
    until: str | None
    """ISO 8601 run-clock time to wake at (None: no timer)."""
    match: list[str]
    """Event match keys the run waits for."""


RunStatus = Literal["running", "completed", "failed", "budget_exhausted"]
"""A run's status as its graph state records it (the run record has more: paused, waiting...)."""


class RunState(TypedDict, total=False):
    """A run's graph state. JSON values only: it is checkpointed without pickle."""

    run_id: str
    requester: str
    started_at: str
    """ISO 8601 time the run started (its time budget counts from it)."""
    queue: list[CallData]
    """Proposed calls not gated yet, in order."""
    current: CurrentCall | None
    results: list[dict[str, Any]]
    """What became of each call (``CallResult.model_dump(mode="json")``), in order."""
    events: list[dict[str, Any]]
    """Events and timers the run has seen (``RunEvent.model_dump(mode="json")``)."""
    findings: dict[str, Any]
    memory: dict[str, Any]
    steps: int
    tool_calls: int
    turn: int
    status: RunStatus
    summary: str
    wait: WaitData | None
    outage: OutageData | None
    """A system found down outside a tool call (a planner's read, the gate's facts): the
    run waits to plan or gate again (see :mod:`~carebound.engine.outage`)."""


class HoldSignal(TypedDict):
    """The graph parked on a hold: the run waits for a reviewer's decision."""

    type: Literal["hold"]
    approval_id: str


class WaitSignal(TypedDict):
    """The graph parked on a wait: the run waits for an event or a time."""

    type: Literal["wait"]
    reason: str
    until: str | None
    match: list[str]


Signal = Annotated[HoldSignal | WaitSignal, Field(discriminator="type")]
"""What a parked graph waits on, tagged by ``type``."""

_SIGNAL: TypeAdapter[HoldSignal | WaitSignal] = TypeAdapter(Signal)


def hold_signal(approval_id: str) -> HoldSignal:
    """The signal of a call held on ``approval_id``."""
    return HoldSignal(type="hold", approval_id=approval_id)


def wait_signal(wait: WaitData) -> WaitSignal:
    """The signal of a run waiting as ``wait`` says."""
    return WaitSignal(type="wait", reason=wait["reason"], until=wait["until"], match=wait["match"])


def read_signal(value: object, *, run_id: str) -> HoldSignal | WaitSignal:
    """The signal a checkpoint of ``run_id`` is parked on; raises :class:`RunStateError` for a
    value no version of carebound writes (a foreign graph's interrupt, or a damaged record)."""
    try:
        return _SIGNAL.validate_python(value)
    except ValidationError as exc:
        kind = value.get("type") if isinstance(value, dict) else type(value).__name__
        raise RunStateError(
            f"run {run_id} is parked on an interrupt carebound cannot read (type {kind!r}: "
            f"{exc.errors()[0]['msg']})",
            hint="it was not written by a carebound graph; cancel the run (carebound cancel) "
            "and start it again",
        ) from None
