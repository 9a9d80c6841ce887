"""The Runner: start runs, list and decide holds, deliver events, sweep timers, audit.

Everything that moves a run follows one pattern: mark the run for driving, record the fact in
Redis (a decision, an event, a fired timer), then *drive* the run: take its lease, resume the
graph as far as it goes (the next hold, wait or end), and settle its record. The mark comes
first so that a process dying between the fact and the drive leaves a marked run. A marked run
that a crashed process left is driven again by :meth:`Runner.recover` or the worker's sweep;
nothing is lost because every step was checkpointed and every effect went through the ledger.

:class:`Runner` is the facade: each public method checks its input and delegates to the
engine's parts: :mod:`~carebound.engine.drive` (lease -> graph -> settle),
:mod:`~carebound.engine.decide` (a reviewer's decision), :mod:`~carebound.engine.wake`
(events, timers, sweep, recover) and :mod:`~carebound.engine.graph` (the agent's graph).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carebound._agent import AgentDefinition
from carebound._errors import RunStateError
from carebound._input_checks import check_event_input
from carebound._principal import Provenance
from carebound.approvals import ApprovalView, Decision
from carebound.assist import ModelConfig, Task
from carebound.audit import AuditCheckpoint, AuditEvent, AuditTrail, VerifyResult
from carebound.clock import Clock
from carebound.engine.cancel import cancel
from carebound.engine.core import Core, DriveMode, default_client, no_run
from carebound.engine.decide import Decider
from carebound.engine.drive import Driver
from carebound.engine.phi_views import phi_viewer, record_phi_view
from carebound.engine.pool import PoolSettings, WorkerPool, release_quarantine, wait_for_stop
from carebound.engine.results import DecideResult, RecoverReport, RunView, SweepReport
from carebound.engine.retention import PurgeReport, purge
from carebound.engine.runner_args import check_agents, check_models, check_runner_args
from carebound.engine.start import start_run
from carebound.engine.wake import Waker
from carebound.guardrails import PolicyPack
from carebound.state.errors import ping, store_errors
from carebound.state.inline_writes import install as install_inline_writes
from carebound.state.keys import DEFAULT_PREFIX
from carebound.state.lease import start_heartbeats
from carebound.state.retention import retention_seconds
from carebound.state.run_search import RunFilter, RunPage, search_runs
from carebound.state.runs import RunRecord
from carebound.state.trips import Client
from carebound.state.work_queue import DeadLetter, WorkQueue
from carebound.tools.connectors import ConnectorsSource, WorldSpec, connectors_factory

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

install_inline_writes()
start_heartbeats()  # one idle thread now, so a tool call on a decide's path starts none


class Runner:
    """Runs bounded agents on a Redis-compatible store. Thread-safe for concurrent decides.

    ``drive`` says who moves a woken run (started, a hold decided, an event delivered, a
    timer fired): ``"inline"`` (the default) drives it in the calling process before the call
    returns; ``"queue"`` enqueues it for the worker pool (``carebound worker``) and returns
    at once, the run's view as stored then. ``connectors``: a connectors file, a parsed
    ``ConnectorsConfig`` or a factory ``(RunContext) -> Connectors`` (None: the file named by
    ``CAREBOUND_CONNECTORS``, else the simulator); ``ConnectorsConfigError`` if unloadable.
    ``model``/``models``: a chat model, and a ``ModelConfig`` or a model per task (see
    ``check_models``). ``agents`` add to the shipped and installed ones, each under its own
    name (one under a known name replaces it in this Runner only; see ``check_agents``).
    ``retention_days``: see :func:`carebound.state.retention.retention_seconds`.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        policy: str | Path | PolicyPack = "default",
        clock: Clock | None = None,
        model: BaseChatModel | None = None,
        models: ModelConfig | Mapping[Task, BaseChatModel] | None = None,
        agents: Mapping[str, AgentDefinition] | None = None,
        connectors: ConnectorsSource | None = None,
        lease_ttl_ms: int = 30_000,
        drive: DriveMode = "inline",
        retention_days: float | None = None,
    ) -> None:
        models = check_models(model, models)  # TypeError / ModelConfigError
        check_agents(agents)  # TypeError / ValueError
        client = client if client is not None else default_client()
        check_runner_args(client, drive, lease_ttl_ms)  # TypeError / ValueError
        core = Core(
            client, prefix=prefix, policy=policy, clock=clock, models=models, agents=agents,
            connectors=connectors_factory(connectors), lease_ttl_ms=lease_ttl_ms, drive=drive,
            retention_s=retention_seconds(retention_days),
        )  # fmt: skip
        self._core = core
        self.connectors = core.connectors  # the factory of each run's connectors
        self.client = client
        self.prefix = prefix
        self.clock: Clock = core.clock
        self.default_policy = policy
        self.approvals = core.approvals
        self.ledger = core.ledger
        self.audit_log = core.audit_log
        self.runs = core.runs
        self._saver = core.saver
        self._driver = Driver(core)
        self._decider = Decider(core, self._driver)
        self._waker = Waker(core, self._driver, self._decider)

    @property
    def drive_mode(self) -> DriveMode:
        """``inline`` or ``queue`` (see the class docstring)."""
        return self._core.drive_mode

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Give back what this Runner borrowed from its client's pool and close the binary
        siblings it opened for a client that decodes replies; the client stays open."""
        self._saver.close()
        self._core.audit_log.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups -------------------------------------------------------------------------

    def agent(self, name: str) -> AgentDefinition:
        """The agent definition called ``name``."""
        return self._core.agent(name)

    @property
    def agent_names(self) -> list[str]:
        """Names of the agents this runner can start."""
        return sorted(self._core.agents)

    def pack_for(self, run_id: str) -> PolicyPack:
        """The policy pack a run was started with (pinned at start)."""
        return self._core.pack_for(run_id)

    def _graph(self, agent: str) -> Any:
        """The compiled graph of ``agent`` (tests drive it directly)."""
        return self._core.graph(agent)

    def _mark_drive(self, run_id: str) -> None:
        """Mark a run for driving (tests leave runs marked as a dead process would)."""
        self._core.trips.mark_drive(run_id)

    # -- starting and driving ------------------------------------------------------------

    @store_errors
    def start(
        self,
        agent: str,
        case: Mapping[str, Any],
        *,
        requester: str,
        policy: str | Path | PolicyPack | None = None,
        world: WorldSpec | None = None,
        run_id: str | None = None,
    ) -> RunView:
        """Start ``agent`` on ``case`` (a FHIR Bundle as JSON) and drive it to its first stop.

        ``world`` (a scenario's systems) is seeded first, through the Runner's connectors (a
        ``WorldSeeder``, as the simulator is).
        """
        return start_run(
            self._core, self._driver, agent, case, requester=requester, policy=policy,
            world=world, run_id=run_id,
        )  # fmt: skip

    @store_errors
    def drive(self, run_id: str, *, lease_wait_s: float = 5.0) -> RunView:
        """Move a run as far as it can go now; safe to call at any time, from any process."""
        return self._driver.drive(run_id, lease_wait_s=lease_wait_s)

    @store_errors
    def wait(self, run_id: str, *, past: str | None = None, timeout_s: float = 60.0) -> RunView:
        """Wait (polling) until a run is at its next stop: not running and, with ``past`` (an
        approval id just decided), not parked on that hold any more. Returns its view, still
        moving if ``timeout_s`` passed first (check ``status``)."""
        return wait_for_stop(self._core, run_id, past=past, timeout_s=timeout_s)

    @store_errors
    def cancel(self, run_id: str, *, by: str, reason: str = "") -> RunView:
        """Stop a run for good; its pending hold leaves the inbox."""
        return cancel(self._core, self._driver, run_id, by=by, reason=reason)

    @store_errors
    def purge(
        self, ended_before: datetime, *, archive: Path | None, dry_run: bool = False
    ) -> PurgeReport:
        """Delete every key of the runs that ended before ``ended_before``; with ``archive``,
        each run's audit chain is first verified and appended, signed, to that file (checked
        by :func:`carebound.audit.verify_archive`; a broken chain's run is kept). ``dry_run``."""
        return purge(self._core, ended_before, archive=archive, dry_run=dry_run)

    # -- reading -------------------------------------------------------------------------

    @store_errors
    def get(self, run_id: str) -> RunView:
        """A run by id, from any process."""
        return self._core.get(run_id)

    @store_errors
    def list_runs(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered (see :meth:`search_runs`)."""
        return self.runs.matching(status=status, agent=agent, limit=limit)

    @store_errors
    def search_runs(self, where: RunFilter, *, limit: int = 50, offset: int = 0) -> RunPage:
        """Runs matching ``where`` (status, agent, requester, patient reference, start date),
        newest first, one page of ``limit`` after ``offset`` matches."""
        return search_runs(self.client, self.prefix, where, limit=limit, offset=offset)

    @store_errors
    def pending(
        self,
        *,
        role: str | None = None,
        agent: str | None = None,
        overdue: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> list[ApprovalView]:
        """Paused steps across all runs, most urgent first. Never scans runs."""
        overdue_at = self.clock.now() if overdue else None
        return self.approvals.pending(
            role=role, agent=agent, overdue_at=overdue_at, limit=limit, offset=offset
        )

    @store_errors
    def approval(self, approval_id: str) -> ApprovalView:
        """One approval by id."""
        return self._decider.approval(approval_id)

    @store_errors
    def reveal(
        self,
        approval_id: str,
        *,
        viewer: str,
        role: str | None = None,
        via: Provenance | None = None,
    ) -> ApprovalView:
        """The approval with its PHI, recording the view (``view_phi``) in the audit trail.

        Only someone who may decide the hold may see its PHI: a directory reviewer holding the
        hold's required role (``role``, if given, must be it), or a service principal
        (``via.kind == "service"``) whose token roles the calling channel has checked.

        Raises:
            DecisionRefusedError: the viewer is not in the directory or lacks the role.
        """
        view = self.approval(approval_id)
        request = view.request
        who, held = phi_viewer(
            self._core, request.run_id, viewer, {view.required_role}, role=role, via=via
        )
        record_phi_view(
            self._core, request.run_id, agent=request.agent, viewer=who, role=held, via=via,
            patient_ref=request.patient_ref, detail={"approval_id": approval_id},
        )  # fmt: skip
        return view

    @store_errors
    def reveal_run(
        self,
        run_id: str,
        *,
        viewer: str,
        roles: Iterable[str],
        role: str | None = None,
        via: Provenance | None = None,
        what: str = "run",
    ) -> None:
        """Record (``view_phi``) that ``viewer`` is shown the PHI of a run's ``what`` (its
        findings, calls or audit trail), after checking as :meth:`reveal` does that they hold
        one of ``roles`` (the roles of the run's holds, as the channel knows them).

        Raises:
            DecisionRefusedError: the viewer is not in the directory or holds none of ``roles``.
        """
        record = self.runs.get(run_id)
        if record is None:
            raise no_run(run_id)
        who, held = phi_viewer(self._core, run_id, viewer, set(roles), role=role, via=via)
        record_phi_view(
            self._core, run_id, agent=record.agent, viewer=who, role=held, via=via,
            patient_ref=None, detail={"view": what},
        )  # fmt: skip

    # -- deciding ------------------------------------------------------------------------

    @store_errors
    def decide(self, approval_id: str, decision: Decision) -> DecideResult:
        """Apply a reviewer's decision; exactly one concurrent decider wins.

        Raises :class:`DecisionRefusedError` (wrong role, own run, stale args hash, an edit
        beyond the grant, ...) or :class:`AlreadyDecidedError` when someone decided first.
        """
        return self._decider.decide(approval_id, decision)

    # -- events, timers, recovery --------------------------------------------------------

    @store_errors
    def deliver(
        self, match: str, payload: Mapping[str, Any] | None = None, *, event_id: str | None = None
    ) -> list[str]:
        """Deliver an external event (e.g. a document arrived) to the runs subscribed to it.

        A run subscribes to a match key when it first waits on it and stays subscribed until
        it ends. A run waiting now is woken; one that is busy or paused on a hold gets the
        event queued and reads it at its next wait, so nothing that arrives in between is
        lost. Returns the ids of the runs the event was delivered to. Delivering the same
        ``event_id`` twice is a no-op.
        """
        check_event_input(match, payload, event_id)  # before any write: see start()
        return self._waker.deliver(match, payload, event_id)

    @store_errors
    def sweep(self) -> SweepReport:
        """Fire due timers, expire or escalate overdue holds, and recover stalled runs.

        Each run is handled on its own: one that fails is logged (by error class, no PHI),
        counted in ``runs_failed`` and left for a later sweep; the others go on. Only the
        store going away stops a sweep."""
        return self._waker.sweep()

    @store_errors
    def fire_timer(self, run_id: str, due: datetime) -> bool:
        """Fire one run's timer now (scenarios do this on their virtual clock)."""
        return self._waker.fire_timer(run_id, due)

    @store_errors
    def recover(self, *, older_than_ms: int = 0) -> list[str]:
        """Drive every run left marked by a process that died mid-drive. Returns the ids of
        those driven to their next stop; see :meth:`recover_runs` for the failures too."""
        return self.recover_runs(older_than_ms=older_than_ms).recovered

    @store_errors
    def recover_runs(self, *, older_than_ms: int = 0) -> RecoverReport:
        """Drive every run left marked (by a process that died mid-drive, or a drive that
        failed) for at least ``older_than_ms``, each on its own: a run whose drive fails is
        logged by error class (no PHI), reported in ``failed`` and retried by a later recover
        until it fails ``QUARANTINE_AFTER`` times in a row, then quarantined. Never stops
        for one run; only the store going away stops it."""
        return self._waker.recover_runs(older_than_ms=older_than_ms)

    @store_errors
    def quarantined(self) -> list[str]:
        """Ids of the quarantined runs, oldest first (``carebound runs --status quarantined``
        lists those whose record can be read)."""
        return self._core.trips.quarantined()

    # -- the worker pool -----------------------------------------------------------------

    @property
    def work(self) -> WorkQueue:
        """The work queue the pool reads: its numbers (``stats``) and dead letters."""
        return self._core.work

    def worker_pool(self, settings: PoolSettings | None = None) -> WorkerPool:
        """This process's share of the worker pool (``carebound worker``); run it with
        :meth:`WorkerPool.run`, drain it with :meth:`WorkerPool.stop`. Needs
        ``drive="queue"``, so what its sweep wakes is enqueued rather than driven in place."""
        if self.drive_mode != "queue":
            raise RunStateError(
                "a worker pool needs a Runner with drive='queue'",
                hint="build the Runner with Runner(client, drive='queue')",
            )
        return WorkerPool(self._core, self._driver, self._waker, settings)

    @store_errors
    def retry_dead_letter(self, dead: DeadLetter) -> bool:
        """Enqueue a dead letter's run again, releasing it from the quarantine first (its
        failure count starts again). False: no such dead letter (retried already)."""
        release_quarantine(self._core, self._driver, dead.run_id)
        return self._core.work.retry(dead)

    # -- audit ---------------------------------------------------------------------------

    @store_errors
    def audit(self, run_id: str) -> list[AuditEvent]:
        """A run's audit trail, oldest first; entries that cannot be read are left out
        (:meth:`verify` reports them as a broken chain)."""
        self._core.record(run_id)
        return self.audit_log.events(run_id, strict=False)

    @store_errors
    def verify(self, run_id: str) -> VerifyResult:
        """Check a run's audit hash chain (hashes, MACs, head and anchor)."""
        self._core.record(run_id)
        return self.audit_log.verify(run_id, exists=True)

    @store_errors
    def audit_trail(
        self, run_id: str, *, checkpoints: Sequence[AuditCheckpoint] = ()
    ) -> AuditTrail:
        """A run's readable audit events and the check of its chain, read together (an
        unreadable entry is a broken chain, not an error); ``checkpoints``: the run's
        exported checkpoints to check the chain against. A run whose keys expired after its
        retention period keeps its chain until it is archived (``carebound audit archive``),
        and it is read the same way."""
        exists = self._core.runs.get(run_id) is not None
        trail = self.audit_log.trail(run_id, exists=True, checkpoints=checkpoints)
        if not exists and not trail.verify.count:
            raise no_run(run_id)
        return trail

    def ping(self) -> None:
        """Check the store answers; raises :class:`StoreUnavailableError` if not."""
        ping(self.client)
