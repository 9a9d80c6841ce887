"""A call whose system is down: the run waits with a retry timer, and a person takes over.

When a connector raises ``SystemUnavailableError`` (its retries are spent, or the system's
circuit breaker is open), the call is not a tool error: nothing is wrong with it. The run parks
in ``waiting`` with the call kept as it was (its effect-ledger entry, if any, stays reserved, so
the retry runs the same effect under the same key: a conditional create finds the first), a
reason that names the system, and a retry timer: the breaker's cool-down or a ``Retry-After``,
else exponential backoff from ``retry_first`` up to ``retry_cap``. Each retry that fails again
parks again. After ``hand_off_after`` tries the case is handed to a person: an audited
``hand_off`` event names the role that takes it over, and the run's wait reason names it too
(``carebound runs``, the inbox's parked runs). The hand-off is written to carebound's own store
only, never to the system that is down, and the call is not dropped: the run keeps waiting,
retrying every ``retry_cap``, until the system is back (the call is then made once, under its
ledger key) or the person cancels the run. A system being down never ends a run, and never
turns a call into an error the planner acts on: the call a reviewer approved is still made.

A system found down outside a tool call (a planner's read, the gate's facts of a queued call)
parks the run the same way (:func:`park_outside_call`): same reason, timer and hand-off; the
tries are kept in the run's state, and once the timer fires the run plans (or gates) again.

When a system's breaker closes, the worker's sweep fires the retry timers of the runs parked on
it at once (:meth:`carebound.engine.wake.Waker.sweep`).

Settings come from the policy pack's ``settings.outage`` (every key optional)::

    settings:
      outage: {retry_first: PT1M, retry_cap: PT30M, hand_off_after: 8,
               hand_off_role: intake_coordinator}
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._limits import BoundedDuration
from carebound.engine.run_state import CurrentCall, OutageData, RunState, WaitData
from carebound.guardrails import PolicyPack
from carebound.state.keys import SYSTEM_UP
from carebound.state.parked import HANDED_TO, PARKED_REASON, system_up_match
from carebound.tools import FactValue
from carebound.tools.connectors import SystemUnavailableError

if TYPE_CHECKING:
    from carebound.engine.node_kit import NodeKit

OUTAGE_MATCH_PREFIX = SYSTEM_UP
"""Match key prefix a run parked on a system subscribes to (``system-up:<system>``)."""
_REASON_PREFIX = PARKED_REASON


class OutageSettings(BaseModel):
    """How a run rides out a system that stays down (the pack's ``settings.outage``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retry_first: BoundedDuration = timedelta(minutes=1)
    """The first retry's wait (doubled after each failed retry)."""
    retry_cap: BoundedDuration = timedelta(minutes=30)
    """The longest wait between two retries."""
    hand_off_after: int = Field(default=8, ge=1, le=1000)
    """Tries of one call (the first included) before a person is handed the case."""
    hand_off_role: str = Field(default="intake_coordinator", min_length=1)
    """The role that takes the case over."""


def outage_settings(pack: PolicyPack) -> OutageSettings:
    """The pack's outage settings (the defaults when it has none, or unusable ones)."""
    raw = pack.settings.get("outage") or {}
    try:
        return OutageSettings.model_validate(raw)
    except ValidationError:
        return OutageSettings()


def outage_match(system: str) -> str:
    """The match key of ``system`` coming back up."""
    return system_up_match(system)


def park_or_hand_off(
    kit: NodeKit,
    state: RunState,
    run_id: str,
    current: CurrentCall,
    exc: SystemUnavailableError,
) -> dict[str, Any]:
    """The state update for a call whose system is down: park it with a retry timer (past
    the pack's limit, with the case handed to a person; see the module docstring)."""
    index = int(current["index"])
    wait, outage = _park(
        kit, run_id, current.get("outage"), exc,
        label={"tool": str(current["call"]["tool"])}, once=f"outage:{index}",
    )  # fmt: skip
    parked: CurrentCall = {**current, "outage": outage}
    return {"current": parked, "wait": wait}


def park_outside_call(
    kit: NodeKit, state: RunState, run_id: str, during: str, exc: SystemUnavailableError
) -> dict[str, Any]:
    """The state update for a system found down outside a tool call (a planner's read, the
    gate's facts of a queued call): the run parks the same way as a call's outage (same
    reason, capped timer and hand-off). Nothing of the failed step is kept: once the timer
    fires (or the system is back), the run plans again, or gates the queued call again."""
    previous = state.get("outage")
    label: dict[str, FactValue] = {"during": during}
    queue = state.get("queue") or []
    if during == "gate" and queue:
        label["tool"] = str(queue[0]["tool"])
    since = previous["since"] if previous else kit.svc.clock.now().isoformat()
    wait, outage = _park(kit, run_id, previous, exc, label=label, once=f"outage:{during}@{since}")
    return {"wait": wait, "outage": outage}


def clear_outage(state: RunState, update: dict[str, Any]) -> dict[str, Any]:
    """``update``, forgetting an outage outside a tool call the run has now got past."""
    if state.get("outage") and "outage" not in update:
        return {**update, "outage": None}
    return update


def _park(
    kit: NodeKit,
    run_id: str,
    previous: OutageData | None,
    exc: SystemUnavailableError,
    *,
    label: dict[str, FactValue],
    once: str,
) -> tuple[WaitData, OutageData]:
    settings = outage_settings(kit.svc.pack_for(run_id))
    now = kit.svc.clock.now()
    tries = (previous["tries"] if previous else 0) + 1
    since = previous["since"] if previous else now.isoformat()
    system = exc.system
    handed = tries >= settings.hand_off_after
    if handed:
        kit.audit(
            run_id,
            action="event",
            outcome="refused",
            detail={
                "kind": "hand_off",
                **label,
                "system": system,
                "tries": tries,
                "role": settings.hand_off_role,
            },
            once=f"{once}:hand_off",
        )
    until = now + retry_wait(settings, tries)
    if exc.retry_at is not None and exc.retry_at > until:
        until = min(exc.retry_at, now + settings.retry_cap)
    kit.audit(
        run_id,
        action="event",
        outcome="failed",
        detail={
            "kind": "outage",
            **label,
            "system": system,
            "tries": tries,
            "retry_at": until.isoformat(),
        },
        once=f"{once}:{tries}",
    )
    if handed:
        failed = (
            f"try {tries} failed: {_short(exc.message)}; {HANDED_TO}"
            f"{settings.hand_off_role} since try {settings.hand_off_after}"
        )
    else:
        failed = f"try {tries} of {settings.hand_off_after} failed: {_short(exc.message)}"
    wait: WaitData = {
        "reason": f"{_REASON_PREFIX}{system} to come back ({failed}); retry at {_stamp(until)}",
        "until": until.isoformat(),
        "match": [outage_match(system)],
    }
    return wait, OutageData(system=system, tries=tries, since=since)


def retry_wait(settings: OutageSettings, tries: int) -> timedelta:
    """The wait after the ``tries``-th failed try: ``retry_first`` doubled after each failed
    try, at most ``retry_cap`` (the doubling stops once past the cap, so a run parked for
    weeks never overflows it)."""
    wait = settings.retry_first
    for _ in range(tries - 1):
        if wait >= settings.retry_cap:
            break
        wait *= 2
    return min(wait, settings.retry_cap)


def _short(message: str) -> str:
    return message if len(message) <= 120 else message[:117] + "..."


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
