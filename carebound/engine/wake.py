"""Wake-ups: events, timers, overdue holds, recovery.

Everything that moves a run from outside follows one path, :meth:`Waker.wake`: mark the run
for driving, record the fact (an event, a fired timer), then drive it. The mark comes first so
that a process dying between the fact and the drive leaves a marked run, which
:meth:`Waker.recover_runs` (or the worker's sweep) drives again. An overdue hold is decided by
the sweep through the decision module's path (:meth:`Decider.on_deadline`), which marks,
decides and takes the run's lease in one round trip, then drives it, like a reviewer's
decision.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from carebound._agent import RunEvent, request_match
from carebound._errors import DecisionRefusedError, LeaseLostError
from carebound._principal import Provenance
from carebound.approvals import ApprovalView, Escalate, Reject
from carebound.audit import Actor
from carebound.clock import to_ms
from carebound.engine.core import Core
from carebound.engine.decide import Decider
from carebound.engine.drive import Driver
from carebound.engine.outage import outage_match
from carebound.engine.results import QUARANTINE_AFTER, RecoverReport, RunView, SweepReport
from carebound.guardrails import check_escalation
from carebound.logs import event
from carebound.state.breaker import BreakerStore
from carebound.state.errors import STORE_DOWN
from carebound.state.outreach import runs_to_poll, stop_polling
from carebound.state.parked import parked_on
from carebound.state.runs import FINAL_STATUSES, RunRecord
from carebound.tools.connectors import ConnectorError, SystemUnavailableError

_log = logging.getLogger("carebound.runner")

WORKER = Provenance(channel="worker", principal="system", kind="system", authenticated=True)
"""The provenance of what carebound's own deadline sweep decides (escalate or expire)."""


class Waker:
    """Wakes runs for one Runner (see the module's docstring)."""

    def __init__(self, core: Core, driver: Driver, decider: Decider) -> None:
        self.core = core
        self.driver = driver
        self.decider = decider

    def wake(self, run_id: str, record: Callable[[], bool], why: str) -> RunView | None:
        """Mark ``run_id`` for driving, record the fact (``record()``: False when there was
        nothing new to record), then drive it (or, in queue mode, enqueue it: ``why`` says
        what woke it). None: nothing was recorded, nothing driven."""
        self.core.trips.mark_drive(run_id)
        if not record():
            return None
        return self.driver.dispatch(run_id, why)

    # -- events and timers ---------------------------------------------------------------

    def deliver(
        self, match: str, payload: Mapping[str, Any] | None, event_id: str | None
    ) -> list[str]:
        """See :meth:`carebound.Runner.deliver` (its input is checked there)."""
        runs = self.core.runs
        delivered = []
        event_id = event_id or f"ev-{uuid.uuid4().hex[:12]}"
        for run_id in runs.waiting_for(match):
            record = runs.get(run_id)
            if record is None or record.status in FINAL_STATUSES:
                runs.clear_wait(run_id, [match])  # ended: unsubscribe it lazily
                continue
            event = RunEvent(
                id=event_id,
                kind="event",
                match=match,
                at=self.core.clock.now(),
                payload=json.loads(json.dumps(payload or {}, default=str)),
            )
            woken = self.wake(run_id, functools.partial(runs.add_event, run_id, event), "event")
            if woken is not None:
                delivered.append(run_id)
        return delivered

    def _fire(self, run_id: str, timer_id: str, at: datetime) -> RunView | None:
        """Record a claimed timer's firing as an event and drive the run; a timer whose wait
        the run has left (an event came first, or the run ended) is dropped: it would wake a
        later wait as if it were that wait's own, or write to an ended run. None then."""
        runs = self.core.runs
        stored = runs.get(run_id)
        if stored is None or not _is_current_timer(stored, timer_id):
            runs.timer_done(run_id, timer_id)
            return None

        def record() -> bool:
            runs.add_event(run_id, RunEvent(id=timer_id, kind="timer", at=at))
            runs.timer_done(run_id, timer_id)
            return True

        return self.wake(run_id, record, "timer")

    def fire_timer(self, run_id: str, due: datetime) -> bool:
        """See :meth:`carebound.Runner.fire_timer`."""
        timer_id = f"timer-{to_ms(due)}"
        if not self.core.runs.claim_timer(run_id, timer_id):
            return False
        self._fire(run_id, timer_id, self.core.clock.now())
        return True

    # -- the sweep -----------------------------------------------------------------------

    def sweep(self, *, recover_after_ms: int = 60_000) -> SweepReport:
        """See :meth:`carebound.Runner.sweep`; runs marked for driving ``recover_after_ms``
        ago or earlier are recovered (in queue mode: enqueued again)."""
        report = SweepReport()
        now = self.core.clock.now()
        self._resume_recovered(report)
        self._poll_outreach(report, now)
        for run_id, timer_id in self.core.runs.claim_due_timers(now):
            if self._isolated(report, run_id, "timer", self._fire, run_id, timer_id, now):
                report.timers_fired += 1
        for view in self.core.approvals.pending(overdue_at=now, limit=100):
            run_id = view.request.run_id
            self._isolated(report, run_id, "deadline", self._overdue, view, now, report)
        recovered = self.recover_runs(older_than_ms=recover_after_ms)
        report.runs_recovered = len(recovered.recovered)
        report.runs_failed += len(recovered.failed)
        report.runs_quarantined += len(recovered.quarantined)
        return report

    def _resume_recovered(self, report: SweepReport) -> None:
        """Fire now the retry timers of the runs parked on a system whose breaker closed."""
        runs = self.core.runs
        for system in BreakerStore(self.core.client, prefix=self.core.prefix).take_recovered():
            for run_id in runs.waiting_for(outage_match(system)):
                record = runs.get(run_id)
                if record is None or record.status in FINAL_STATUSES:
                    runs.clear_wait(run_id, [outage_match(system)])
                    continue
                due = record.wait_until
                if record.status != "waiting" or due is None:
                    continue
                if parked_on(record.wait_reason, system) and self._isolated(
                    report, run_id, "resume", self.fire_timer, run_id, due
                ):
                    report.runs_resumed += 1

    def _poll_outreach(self, report: SweepReport, now: datetime) -> None:
        """Collect the replies of the runs whose outreach channels poll (CDex), and deliver
        each to its run as an inbound document."""
        core = self.core
        for run_id in runs_to_poll(core.client, prefix=core.prefix):
            record = core.runs.get(run_id)
            if record is None or record.status in FINAL_STATUSES:
                stop_polling(core.client, run_id, prefix=core.prefix)
                continue
            try:
                replies = core.connectors_for(run_id, record.agent).outreach.due_replies(now)
            except SystemUnavailableError:
                continue  # the office's endpoint is down: its replies wait on the server
            except ConnectorError as exc:
                # It refused the poll (e.g. HTTP 500): its replies wait on the server, polled
                # again next sweep; the sweep goes on with the other runs.
                event(_log, "sweep.poll_refused", logging.WARNING, run_id=run_id,
                      error=type(exc).__name__)  # fmt: skip
                continue
            for inbound in replies:
                if inbound.request_id:
                    payload = inbound.model_dump(mode="json")
                    match = request_match(inbound.request_id)
                    report.replies_delivered += len(
                        self.deliver(match, payload, inbound.inbound_id)
                    )

    def _isolated(
        self, report: SweepReport, run_id: str, what: str, fn: Callable[..., Any], *args: Any
    ) -> bool:
        """Call ``fn(*args)`` for one run; True if it moved the run on (``fn`` returned
        something: None means there was nothing to do). An unexpected error
        (not the store's) is logged and counted, and the sweep goes on with the next run."""
        try:
            view = fn(*args)
        except STORE_DOWN:
            raise
        except LeaseLostError:
            return False  # another process drives it
        except Exception as exc:
            event(_log, "sweep.failed", logging.WARNING, step=what, run_id=run_id,
                  error=type(exc).__name__)  # fmt: skip
            report.runs_failed += 1
            return False
        if isinstance(view, RunView) and view.record.failures:
            report.runs_failed += 1
            report.runs_quarantined += view.status == "quarantined"
        return view is not None

    def _may_escalate_on_timeout(self, view: ApprovalView, to_role: str) -> bool:
        """Whether the deadline may hand ``view`` to ``to_role``: only along a path the run's
        pack declares for the rule (else the hold expires instead)."""
        try:
            check_escalation(self.core.pack_for(view.request.run_id), view, to_role)
        except DecisionRefusedError:
            return False
        return True

    def _overdue(self, view: ApprovalView, now: datetime, report: SweepReport) -> RunView | None:
        """Escalate or expire one overdue hold, through the decision module's path."""
        request = view.request
        system = Actor(kind="system", id="deadline-sweep", role=None)
        decision: Escalate | Reject
        if (
            request.on_timeout == "escalate"
            and request.escalate_to
            and self._may_escalate_on_timeout(view, request.escalate_to)
        ):
            decision = Escalate(
                reviewer=system.id,
                role=view.required_role,
                args_hash=request.args_hash,
                to_role=request.escalate_to,
                via=WORKER,
            )
            if self.decider.on_deadline(view, decision) is not None:
                report.holds_escalated += 1
            return None
        decision = Reject(
            reviewer=system.id,
            role=view.required_role,
            args_hash=request.args_hash,
            reason="the hold passed its deadline",
            via=WORKER,
        )
        result = self.decider.on_deadline(view, decision)
        if result is None:
            return None
        report.holds_expired += 1
        return result.run

    # -- recovery ------------------------------------------------------------------------

    def recover_runs(self, *, older_than_ms: int) -> RecoverReport:
        """See :meth:`carebound.Runner.recover_runs`."""
        core = self.core
        cutoff = to_ms(core.clock.now()) - older_than_ms
        report = RecoverReport()
        for run_id in core.trips.marked_before(cutoff):
            if core.drive_mode == "queue":
                core.work.enqueue(run_id, "recover")  # coalesced if one is waiting already
                report.queued.append(run_id)
                continue
            try:
                if core.runs.get(run_id) is None:
                    continue  # its start died before writing the record; a retried start drives it
                view = self.driver.drive(run_id, lease_wait_s=0)
            except STORE_DOWN:
                raise
            except LeaseLostError:
                continue  # another process took it over: it drives it
            except Exception as exc:
                report.failed.append(run_id)
                if self._count_unreadable_failure(run_id, exc):
                    report.quarantined.append(run_id)
                continue
            if not core.serves(view.record):
                report.left.append(run_id)
            elif view.record.failures:
                report.failed.append(run_id)
                if view.status == "quarantined":
                    report.quarantined.append(run_id)
            elif view.status != "running":
                report.recovered.append(run_id)
        return report

    def _count_unreadable_failure(self, run_id: str, exc: Exception) -> bool:
        """Count a failure that happened before the run's record could be used (it is
        unreadable, or its pinned data is); quarantine the run on the ``QUARANTINE_AFTER``th.
        Returns whether it was quarantined."""
        name = type(exc).__name__
        failures, quarantined = self.core.trips.count_unreadable_failure(run_id, QUARANTINE_AFTER)
        event(_log, "run.recover_failed", logging.WARNING, run_id=run_id, error=name,
              failures=failures, quarantined=quarantined)  # fmt: skip
        return quarantined


def _is_current_timer(record: RunRecord, timer_id: str) -> bool:
    """Whether ``timer_id`` (``timer-<ms>``) is the timer of the wait ``record`` is in: the run
    has not ended and the record still names that wake-up time (a drive that failed keeps it,
    so the run's recovery still finds its timer's event)."""
    until = record.wait_until
    if record.status in FINAL_STATUSES or until is None:
        return False
    return timer_id == f"timer-{to_ms(until)}"
