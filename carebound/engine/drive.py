"""Driving a run: take its lease -> resume the graph as far as it goes -> settle its record.

A drive stops at the run's next hold, wait or end. Settling stores where it stopped and gives
the lease back in one round trip, which also reads whether the run moved meanwhile (its hold
was decided, or an event arrived, before the stop was registered): then it drives again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.types import Command

from carebound._agent import RunEvent
from carebound._errors import LeaseLostError, NotFoundError
from carebound._wire import riding
from carebound.approvals import ApprovalView
from carebound.engine.core import Core, no_run
from carebound.engine.decision_audit import ensure_decision_audited, final_decision_append
from carebound.engine.graph import RunState
from carebound.engine.node_kit import FRESH_STEPS, REPLAYED_GATE
from carebound.engine.results import QUARANTINE_AFTER, RunView
from carebound.engine.run_state import HoldSignal, WaitSignal, read_signal
from carebound.engine.status_audit import status_change
from carebound.engine.tracing import drive_span, drive_stopped
from carebound.logs import event
from carebound.state.errors import STORE_FAILURE
from carebound.state.inline_writes import inline_writes
from carebound.state.lease import Lease
from carebound.state.runs import FINAL_STATUSES, RunRecord, RunStatus
from carebound.state.segment_reads import graph_segment
from carebound.state.trips import LeaseReads, Settlement
from carebound.tools.connectors import SystemUnavailableError

_log = logging.getLogger("carebound.runner")


@dataclass(frozen=True)
class Stop:
    """Where a run's graph stopped: its state values and the interrupt it is parked on."""

    values: dict[str, Any]
    interrupt: HoldSignal | WaitSignal | None
    """The signal of the first interrupt (a hold or a wait), or None."""
    tasks_left: bool
    """Whether the latest checkpoint still has tasks to run (a crash mid-step)."""

    @classmethod
    def of_snapshot(cls, snapshot: Any, run_id: str) -> Stop:
        """From ``graph.get_state``."""
        interrupts = snapshot.interrupts
        return cls(
            values=dict(snapshot.values or {}),
            interrupt=read_signal(interrupts[0].value, run_id=run_id) if interrupts else None,
            tasks_left=bool(snapshot.next or snapshot.tasks),
        )

    @classmethod
    def of_output(cls, output: Mapping[str, Any], run_id: str) -> Stop:
        """From what ``graph.invoke`` returned: the state, with ``__interrupt__`` when it
        parked (a graph that returns normally has either parked or ended)."""
        values = {k: v for k, v in output.items() if k != "__interrupt__"}
        interrupts = output.get("__interrupt__") or ()
        return cls(
            values=values,
            interrupt=read_signal(interrupts[0].value, run_id=run_id) if interrupts else None,
            tasks_left=bool(interrupts),
        )


@dataclass(frozen=True)
class _Step:
    """One ``graph.invoke``: its input, and the queued event it consumes."""

    command: Any
    consumed: RunEvent | None = None
    fresh: bool = False
    """No step of this invoke can be the replay of one a crashed driver began (a new run, or
    one read parked on an interrupt): its gate need not ask the ledger first (``FRESH_STEPS``)."""
    replays: int | None = None
    """The index of the call whose gate the invoke's first step judges, when that step is one
    a crashed driver began (``REPLAYED_GATE``)."""


class Driver:
    """Drives runs for one Runner (see the module's docstring)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def dispatch(self, run_id: str, why: str) -> RunView:
        """Have a woken run driven: here and now (``inline``), or by a worker (``queue``: the
        run is enqueued and its view, as stored now, returned)."""
        if self.core.drive_mode == "queue":
            self.core.work.enqueue(run_id, why)
            return self.core.get(run_id)
        return self.drive(run_id, lease_wait_s=5.0)

    def take_lease(
        self, run_id: str, wait_s: float, *, decided: ApprovalView | None = None
    ) -> LeaseReads:
        """Take the run's lease and what goes with it (one round trip per try, for up to
        ``wait_s`` while another process holds it); raises :class:`NotFoundError` for an
        unknown run. With ``decided``, the first try also appends that decision's audit
        event (idempotent)."""
        core = self.core
        audit = final_decision_append(core, decided) if decided is not None else None
        reads = core.trips.take_lease_waiting(
            run_id, wait_s, cold=lambda: core.is_cold(run_id), audit=audit
        )
        return self.accept(run_id, reads)

    def accept(self, run_id: str, reads: LeaseReads) -> LeaseReads:
        """Check what a lease trip read (an unknown run raises) and cache its pinned data."""
        if reads.record is None:
            raise no_run(run_id)
        if reads.lease is not None:
            self.core.remember_pinned(run_id, reads.pinned)
        return reads

    def drive(
        self,
        run_id: str,
        *,
        lease_wait_s: float,
        decided: ApprovalView | None = None,
        acquired: LeaseReads | None = None,
    ) -> RunView:
        """Move a run as far as it can go now. ``decided`` is the approval this process just
        decided (final: it is not read back, and its inbox entry is dropped in the write that
        settles the run), and ``acquired`` what the decide step's round trip took already."""
        core = self.core
        audited = acquired is not None and acquired.decision_audited
        if acquired is None or (acquired.lease is None and lease_wait_s > 0):
            acquired = self.take_lease(run_id, lease_wait_s, decided=None if audited else decided)
            if audited:
                acquired = _audited(acquired)
        lease, record = acquired.lease, acquired.record
        assert record is not None
        if lease is None or record.status in FINAL_STATUSES:
            # Another process drives it (it stays marked for recovery), or it has ended.
            if decided is not None:
                core.approvals.unindex(decided.request.approval_id, decided.required_role)
            if lease is not None:
                core.trips.unmark(run_id)
                core.leases.release(lease)
            return core.get(run_id)
        if not core.serves(record):
            return self._leave_alone(run_id, record, lease, decided)
        released = False
        try:
            # riding: what the graph segments leave unsent (their last checkpoint, audit
            # appends) rides the round trip that settles the run
            with drive_span(run_id, record.agent, record.trace) as span, riding():
                try:
                    with (
                        core.saver.primed(run_id, acquired.latest),
                        core.saver.buffered_writes(run_id),
                    ):
                        stop = self._resume(
                            run_id, record, lease, decided,
                            decision_audited=acquired.decision_audited,
                        )  # fmt: skip
                except Exception as exc:
                    if isinstance(exc, (*STORE_FAILURE, LeaseLostError)):
                        raise
                    released = True
                    failed = self._failed(run_id, record, lease, exc)
                    drive_stopped(span, failed.status)
                    return failed
                settled = self.settle(run_id, record, stop, lease=lease, decided=decided)
                released = True
                drive_stopped(span, settled[0].status, effects=len(settled[2]))
        except LeaseLostError:
            if decided is None:
                raise
            # The decision is stored and the run moves on in the process that took it over:
            # the reviewer is told where the run is, not that the decision was refused.
            core.leases.release(lease)
            return core.get(run_id)
        finally:
            if not released:
                core.leases.release(lease)
        record, moved, effects, pending = settled
        if moved:
            return self.drive(run_id, lease_wait_s=0)
        if record.status in FINAL_STATUSES:
            core.runs.forget_waits(run_id)
        return RunView.of(record, stop.values, effects, pending)

    def _leave_alone(
        self, run_id: str, record: RunRecord, lease: Lease, decided: ApprovalView | None
    ) -> RunView:
        """This process lacks the run's agent, or its connectors reach other systems than the
        run was started with: driving it here would fail (counting towards its quarantine),
        or fail half-way or reach the wrong EHR. The run is not touched: it stays marked, so a
        process that has both drives it (its recovery, or a worker taking the re-enqueued
        run), and why is logged (the agent, or both connectors identities)."""
        core = self.core
        if record.agent not in core.agents:
            event(_log, "run.agent_not_installed", logging.WARNING, run_id=run_id,
                  agent=record.agent)  # fmt: skip
        else:
            event(_log, "run.connectors_mismatch", logging.WARNING, run_id=run_id,
                  agent=record.agent, run_connectors=record.connectors,
                  process_connectors=core.connectors_identity)  # fmt: skip
        if decided is not None:
            core.approvals.unindex(decided.request.approval_id, decided.required_role)
        core.leases.release(lease)
        return core.get(run_id)

    def _failed(self, run_id: str, record: RunRecord, lease: Lease, exc: Exception) -> RunView:
        """Record a drive that failed with an unexpected error and release the run: it stays
        marked (the next recover retries it) until it has failed ``QUARANTINE_AFTER`` times in
        a row, then it is quarantined. Only the error's class is kept (its message may hold
        PHI)."""
        core = self.core
        name = type(exc).__name__
        down = exc.system if isinstance(exc, SystemUnavailableError) else None
        failures = record.failures + (0 if down else 1)
        quarantined = failures >= QUARANTINE_AFTER
        event(_log, "run.drive_failed", logging.WARNING, run_id=run_id, agent=record.agent,
              error=name, failures=failures, quarantined=quarantined)  # fmt: skip
        if down:
            status: RunStatus = "running"
            # A system outside is down (read outside a tool call): not the run's fault, so it
            # never counts towards quarantine.
            summary = f"{down} is unavailable (outside a tool call); the worker retries it"
        elif quarantined:
            status = "quarantined"
            summary = (
                f"quarantined after {failures} failed drives in a row (last: {name}); not "
                "retried until an operator looks at it (carebound status / audit)"
            )
        else:
            status = "running"
            summary = (
                f"drive failed ({name}, {failures} of {QUARANTINE_AFTER} in a row); "
                "the worker retries it"
            )
        updated = record.model_copy(
            update={
                "status": status,
                "summary": summary,
                "failures": failures,
                "updated_at": core.clock.now(),
            }
        )
        if not core.trips.store_failure(run_id, updated, lease, quarantine=quarantined):
            return core.get(run_id)  # another process took the run over meanwhile
        try:
            category = core.category(record.agent)
        except NotFoundError:
            category = "run"
        detail = {
            "kind": "quarantined" if quarantined else "drive_failed",
            "error_class": name,
            "failures": failures,
        }
        core.system_event(run_id, category, "failed", detail)
        return core.get(run_id)

    def _resume(
        self,
        run_id: str,
        record: RunRecord,
        lease: Lease,
        decided: ApprovalView | None,
        *,
        decision_audited: bool = False,
    ) -> Stop:
        """Run the graph under the lease until nothing moves it on."""
        core = self.core
        graph = core.graph(record.agent)
        config: dict[str, Any] = {
            "configurable": {"thread_id": run_id, "fencing_token": lease.token},
            "recursion_limit": 10_000,
            # Each step has one task, run inline, and checkpoint writes run inline too
            # (carebound.state.inline_writes); were that off, one pool thread instead of several.
            "max_concurrency": 1,
        }
        renewed = time.monotonic()
        stop: Stop | None = None
        if not (
            decided is not None
            and record.status == "paused"
            and record.pending_approval == decided.request.approval_id
        ):
            stop = Stop.of_snapshot(graph.get_state(config), run_id)
        # else: the record, written under the lease after the hold was checkpointed, says the
        # run is parked on the hold just decided here, so it is resumed without reading the
        # state first. Were the record behind the checkpoint (a driver died before settling),
        # the resume is still harmless: the hold node reads the decision, the wait node
        # ignores a payload that is not an event, and a step left mid-way just continues.
        parked_here = False
        if decided is not None:
            core.decided[decided.request.approval_id] = decided
        try:
            for _ in range(1000):
                step: _Step | None
                if stop is None:
                    assert decided is not None
                    if not decision_audited:
                        ensure_decision_audited(core, decided)
                    step = _Step(Command(resume={"approval_id": decided.request.approval_id}))
                else:
                    step = self._next_step(run_id, record, stop, parked_here=parked_here)
                if step is None:
                    break
                config["configurable"][FRESH_STEPS] = step.fresh
                config["configurable"][REPLAYED_GATE] = step.replays
                with inline_writes(), graph_segment():
                    output = graph.invoke(step.command, config, durability="sync")
                    stop = Stop.of_output(output, run_id)
                    # the segment's checkpoint rides with its audit appends on the next round
                    # trip: consuming its event, or settling (carebound.checkpoint._session)
                    core.saver.flush_ahead()
                parked_here = True
                if step.consumed is not None:
                    core.runs.consume_event(run_id, step.consumed.id)
                if time.monotonic() - renewed > core.lease_ttl_ms / 3000:
                    core.leases.renew(lease)
                    renewed = time.monotonic()
            else:
                stop = Stop.of_snapshot(
                    graph.get_state(config), run_id
                )  # the step limit was reached
        finally:
            if decided is not None:
                core.decided.pop(decided.request.approval_id, None)
        assert stop is not None
        return stop

    def _next_step(
        self, run_id: str, record: RunRecord, stop: Stop, *, parked_here: bool
    ) -> _Step | None:
        """What moves the run on from ``stop`` now, or None when nothing does."""
        core = self.core
        # A new run, or one parked on an interrupt (what a step left mid-way reserves in the
        # ledger comes after a checkpoint newer than the parked one), runs fresh steps only.
        if not stop.values:
            return _Step(_initial_state(record), fresh=True)
        if stop.interrupt is not None:
            if parked_here:
                return None  # settle checks, in its round trip, whether it moved meanwhile
            value = stop.interrupt
            if value["type"] == "hold":
                approval_id = value["approval_id"]
                view = core.decided.get(approval_id) or core.approvals.get(approval_id)
                if view is None or view.status == "pending":
                    return None
                ensure_decision_audited(core, view)
                return _Step(Command(resume={"approval_id": approval_id}), fresh=True)
            event = core.runs.peek_event(run_id)
            if event is None:
                return None
            resume: Command[Any] = Command(resume=event.model_dump(mode="json"))
            return _Step(resume, consumed=event, fresh=True)
        if stop.tasks_left:
            # interrupted by a crash mid-step: continue from the checkpoint
            return _Step(None, replays=int(stop.values.get("tool_calls", 0)))
        return None

    def settle(
        self,
        run_id: str,
        record: RunRecord,
        stop: Stop,
        *,
        lease: Lease,
        decided: ApprovalView | None,
    ) -> tuple[RunRecord, bool, Any, ApprovalView | None]:
        """Store where the run stopped and release its lease, in one round trip that also
        reads what the caller's view needs and whether the run moved meanwhile. Returns the
        stored record, whether it moved meanwhile, its effects and its pending hold."""
        values = stop.values
        status: RunStatus
        pending = None
        wait: tuple[list[str], datetime | None] | None = None
        wait_reason = None
        wait_until = None
        if stop.interrupt is not None:
            value = stop.interrupt
            if value["type"] == "hold":
                status, pending = "paused", value["approval_id"]
            else:
                status = "waiting"
                wait_reason = value["reason"]
                until = value["until"]
                wait_until = datetime.fromisoformat(until) if until else None
                wait = (list(value["match"]), wait_until)
        elif stop.tasks_left:
            status = "running"
        else:
            status = values.get("status") or "completed"
            if status == "running":
                status = "completed"
        updated = record.model_copy(
            update={
                "status": status,
                "pending_approval": pending,
                "wait_reason": wait_reason,
                "wait_until": wait_until,
                "summary": values.get("summary", ""),
                "updated_at": self.core.clock.now(),
                "failures": 0,
            }
        )
        unindex = None
        if decided is not None and decided.request.approval_id != pending:
            unindex = (decided.request.approval_id, decided.required_role)
        settled = self.core.trips.settle(
            run_id,
            Settlement(
                record=updated,
                stored=record,
                lease=lease,
                wait=wait,
                unmark=status != "running",
                unindex=unindex,
                read_pending=pending,
                read_has_event=status == "waiting",
                audit=(audit := status_change(self.core, record, status, lease)),
            ),
        )
        if not settled.written:
            raise LeaseLostError(
                f"run {run_id} was not settled: this process lost its lease while driving it",
                hint="another worker owns the run now and settles it; nothing to do here",
            )
        if audit is not None and not settled.audited:
            self.core.audit_log.record(run_id, once=audit.once, **audit.fields)
        if audit is not None:
            event(_log, "run.status", run_id=run_id, agent=record.agent, status=status,
                  previous=record.status, wait_reason=None if pending else wait_reason)  # fmt: skip
        view = settled.pending
        moved = (view is not None and view.status != "pending") or settled.has_event
        return updated, moved, settled.effects, view


def _audited(reads: LeaseReads) -> LeaseReads:
    """``reads``, marked as having the decision's audit event in the chain."""
    return LeaseReads(reads.lease, reads.record, True, reads.pinned, reads.latest)


def _initial_state(record: RunRecord) -> RunState:
    return RunState(
        run_id=record.run_id,
        requester=record.requester,
        started_at=record.created_at.isoformat(),
        queue=[],
        current=None,
        results=[],
        events=[],
        findings={},
        memory={},
        steps=0,
        tool_calls=0,
        turn=0,
        status="running",
        summary="",
        wait=None,
    )
