"""The store as the read-only commands see it (``inbox``, ``show``, ``runs``, ``status``,
``audit``): the approval, run, ledger and audit stores themselves, without a
:class:`~carebound.Runner`.

Building a Runner loads every agent, LangGraph and fhir.resources, which costs a looking
command seconds; these reads need none of it. What a Runner adds to a read is kept here: the
errors for unknown ids, the store's failures as :class:`~carebound.StoreUnavailableError`, and
the PHI policy, from the table each run pins at start (``PhiPolicy.table_json``). A run
started before runs pinned it has no table: :meth:`StoreReader.phi_policy` then says so
(None) and the command asks a Runner instead. Everything that writes (a decision, a reveal)
goes through a Runner as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from carebound._errors import NotFoundError, echo_id
from carebound.approvals import ApprovalStore, ApprovalView
from carebound.clock import Clock, SystemClock
from carebound.state.errors import store_errors
from carebound.state.ledger import EffectLedger, LedgerEntry
from carebound.state.parked import ParkedRun, parked_runs
from carebound.state.run_search import RunFilter, RunPage, search_runs
from carebound.state.runs import RunRecord, RunStore

if TYPE_CHECKING:
    import redis

    from carebound._phi import PhiPolicy
    from carebound.audit import AuditCheckpoint, AuditLog, AuditTrail
    from carebound.engine.results import RunView


class StoreReader:
    """Read-only views of one store (a client and a key prefix)."""

    def __init__(self, client: redis.Redis, *, prefix: str, clock: Clock | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.approvals = ApprovalStore(client, prefix=prefix)
        self.runs = RunStore(client, prefix=prefix)
        self.ledger = EffectLedger(client, prefix=prefix)
        self._audit_log: AuditLog | None = None

    @property
    def audit_log(self) -> AuditLog:
        """The store's audit log (built on first use: only ``audit`` needs it)."""
        if self._audit_log is None:
            from carebound.audit import AuditLog

            self._audit_log = AuditLog(self.client, prefix=self.prefix)
        return self._audit_log

    @store_errors
    def record(self, run_id: str) -> RunRecord:
        """A run's record; raises :class:`NotFoundError` for an unknown run."""
        record = self.runs.get(run_id)
        if record is None:
            raise NotFoundError(f"no run {echo_id(run_id)}", hint="list runs with 'carebound runs'")
        return record

    @store_errors
    def parked(self, *, agent: str | None = None, handed_to: str | None = None) -> list[ParkedRun]:
        """Runs waiting for a system that is down (those handed to the role ``handed_to``
        only, if given), the next retry first (as the inbox shows them; see
        :mod:`carebound.state.parked`)."""
        return parked_runs(self.client, prefix=self.prefix, agent=agent, handed_to=handed_to)

    @store_errors
    def list_runs(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered (as ``Runner.list_runs``)."""
        return self.runs.matching(status=status, agent=agent, limit=limit)

    @store_errors
    def search_runs(self, where: RunFilter, *, limit: int = 50, offset: int = 0) -> RunPage:
        """Runs matching ``where``, newest first (as ``Runner.search_runs``)."""
        return search_runs(self.client, self.prefix, where, limit=limit, offset=offset)

    @store_errors
    def pending(
        self,
        *,
        role: str | None = None,
        agent: str | None = None,
        overdue: bool = False,
        limit: int = 20,
    ) -> list[ApprovalView]:
        """Paused steps across all runs, most urgent first (as ``Runner.pending``)."""
        return self.approvals.pending(
            role=role,
            agent=agent,
            overdue_at=self.clock.now() if overdue else None,
            limit=limit,
        )

    @store_errors
    def approval(self, approval_id: str) -> ApprovalView:
        """One approval by id; raises :class:`NotFoundError`."""
        view = self.approvals.get(approval_id)
        if view is None:
            raise NotFoundError(
                f"no approval {echo_id(approval_id)}",
                hint="list paused steps with 'carebound inbox'",
            )
        return view

    @store_errors
    def effects(self, run_id: str) -> list[LedgerEntry]:
        """A run's effect-ledger entries."""
        return self.ledger.entries(run_id)

    @store_errors
    def audit_trail(
        self, run_id: str, *, checkpoints: Sequence[AuditCheckpoint] = ()
    ) -> AuditTrail:
        """A run's readable audit events and the check of its chain (as
        ``Runner.audit_trail``: an expired run's chain, kept until archived, too)."""
        exists = self.runs.get(run_id) is not None
        trail = self.audit_log.trail(run_id, exists=True, checkpoints=checkpoints)
        if not exists and not trail.verify.count:
            self.record(run_id)  # raises NotFoundError
        return trail

    @store_errors
    def phi_policy(self, run_id: str) -> PhiPolicy | None:
        """The PHI policy run ``run_id`` pinned at start; None when it pinned none (an older
        run: ask a Runner, which knows the agents) or the run is unknown."""
        raw = self.runs.phi_json(run_id)
        if raw is None:
            return None
        from carebound._phi import PhiPolicy

        return PhiPolicy.from_table_json(raw)

    @store_errors
    def run_view(self, run_id: str) -> RunView | None:
        """A run's view as ``Runner.get`` gives it, less the call results (``status`` shows
        none): the record, the steps and findings of its newest checkpoint, its effects and
        pending hold. None when the checkpoint holds values only LangGraph can read (see
        ``carebound.checkpoint._peek``): ask a Runner then."""
        from carebound.checkpoint._peek import latest_values
        from carebound.engine.results import RunView

        record = self.record(run_id)
        values = latest_values(self.client, self.prefix, run_id, ("steps", "findings"))
        if values is None:
            return None
        pending = self.approvals.get(record.pending_approval) if record.pending_approval else None
        return RunView.of(record, values, self.ledger.entries(run_id), pending)
