"""Cancelling a run: stop it for good under its lease; its pending hold leaves the inbox, and
the audit trail records who cancelled it and why."""

from __future__ import annotations

from carebound._errors import RunStateError, echo_id
from carebound._limits import InputLimitError
from carebound._principal import normalize_reviewer_id
from carebound.audit import Actor
from carebound.engine.core import Core, install_hint
from carebound.engine.drive import Driver
from carebound.engine.results import RunView
from carebound.state.runs import FINAL_STATUSES

REASON_MAX = 200
"""The longest reason an audit event detail takes."""


def cancel(core: Core, driver: Driver, run_id: str, *, by: str, reason: str) -> RunView:
    """See :meth:`carebound.Runner.cancel`."""
    # who cancels is audited: an id the trail cannot take is refused before anything changes
    by = normalize_reviewer_id(by, what="id of who cancels")
    if len(reason) > REASON_MAX:  # checked before anything is written: the reason is audited
        raise InputLimitError(
            f"cancelling run {run_id}",
            "reason",
            f"{len(reason)} characters, more than the {REASON_MAX} an audit detail takes",
            hint="give a short reason (the audit trail keeps references, not documents)",
        )
    acquired = driver.take_lease(run_id, 5.0)
    lease, record = acquired.lease, acquired.record
    if lease is None:
        raise RunStateError(f"run {run_id} is busy in another process", hint="try again")
    assert record is not None
    try:
        if record.status in FINAL_STATUSES:
            raise RunStateError(
                f"run {run_id} already ended ({record.status})",
                hint="an ended run needs no cancel; 'carebound purge' deletes ended runs",
            )
        if record.agent not in core.agents:  # its audit category: checked before any change
            raise RunStateError(
                f"unknown agent {echo_id(record.agent)} (not installed in this process): run "
                f"{run_id} was not cancelled",
                hint=install_hint(record.agent, "cancel where it is installed"),
            )
        if record.pending_approval:
            # withdrawn, not only out of the inbox: a late decision is refused, never recorded
            core.approvals.withdraw(
                record.pending_approval,
                now=core.clock.now(),
                by=f"carebound (withdrawn: the run was cancelled by {by})"[:200],
            )
        cancelled = record.model_copy(
            update={
                "status": "cancelled",
                # the reason is a person's free text (it may quote PHI): audited, where it
                # is masked like a reviewer's reason, never copied into the summary
                "summary": f"cancelled by {by}",
                "pending_approval": None,
                "updated_at": core.clock.now(),
            }
        )
        # The ended status rides ahead of its audit event, in the event's round trip: a
        # process that died between the two (two round trips apart, with the unmark and the
        # waits between) left a cancelled run whose trail never said who cancelled it, or why.
        core.audit_log.record(
            run_id,
            time=core.clock.now(),
            actor=Actor(kind="person", id=by, role=None),
            action="update",
            category=core.category(record.agent),
            outcome="success",
            detail={"status": "cancelled", "reason": reason} if reason else {"status": "cancelled"},
            before=lambda pipe: core.trips.queue_cancelled(pipe, cancelled),
        )
        core.trips.unmark(run_id)
        core.runs.forget_waits(run_id)
    finally:
        core.leases.release(lease)
    return core.get(run_id)
