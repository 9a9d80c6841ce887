"""The audit event of a run's change of status: the trail says when a run parked, waited,
resumed and ended, so process figures (cycle time, waits, exception rate) come from the
trail alone (see :mod:`carebound.kpi`)."""

from __future__ import annotations

from typing import Any

from carebound.audit import Actor, AuditOutcome
from carebound.engine.core import Core
from carebound.state.lease import Lease
from carebound.state.runs import RunRecord, RunStatus
from carebound.state.trips import AuditAppend

_OUTCOME: dict[str, AuditOutcome] = {
    "running": "success",
    "completed": "success",
    "paused": "pending",
    "waiting": "pending",
    "failed": "failed",
    "quarantined": "failed",
    "budget_exhausted": "refused",
    "cancelled": "refused",
}


def status_fields(core: Core, record: RunRecord, status: RunStatus) -> dict[str, Any]:
    """The audit fields of ``record``'s run moving to ``status`` at the engine clock's now."""
    return {
        "time": core.clock.now(),
        "actor": Actor(kind="agent", id=record.agent),
        "action": "event",
        "category": core.category(record.agent),
        "outcome": _OUTCOME[status],
        "detail": {"status": status, "previous": record.status, "agent": record.agent},
    }


def status_change(
    core: Core, record: RunRecord, status: RunStatus, lease: Lease
) -> AuditAppend | None:
    """The event to append when a drive under ``lease`` leaves the run in ``status`` (None:
    the status did not change). Idempotent per lease and status, so a re-sent settle
    records it once."""
    if status == record.status:
        return None
    return AuditAppend(
        run_id=record.run_id,
        once=f"status:{lease.token}:{status}",
        fields=status_fields(core, record, status),
    )
