"""The Runner for asyncio services.

Each method runs the synchronous :class:`~carebound.Runner` method of the same name in a worker
thread (``asyncio.to_thread``), so an event loop is never blocked by Redis round trips or graph
steps. The sync Runner is thread-safe for this use: every run is driven under its Redis lease.

The two classes are twins: every public method of ``Runner`` is here under the same name with the
same parameters (a test compares them), as a coroutine, except what does no I/O (``agent``,
``agent_names``, ``worker_pool``, the ``drive_mode`` and ``work`` properties), which is
answered directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound import (
        AgentDefinition,
        ApprovalView,
        DecideResult,
        Decision,
        PolicyPack,
        RecoverReport,
        Runner,
        RunView,
        SweepReport,
    )
    from carebound._principal import Provenance
    from carebound.audit import AuditCheckpoint, AuditEvent, AuditTrail, VerifyResult
    from carebound.engine.core import DriveMode
    from carebound.engine.pool import PoolSettings, WorkerPool
    from carebound.engine.retention import PurgeReport
    from carebound.state.run_search import RunFilter, RunPage
    from carebound.state.runs import RunRecord
    from carebound.state.work_queue import DeadLetter, WorkQueue
    from carebound.tools.connectors import WorldSpec


class AsyncRunner:
    """Async twin of :class:`~carebound.Runner`; construct it around a Runner.

    Use it as ``async with AsyncRunner(Runner(client)) as runner: ...`` to close it on exit.
    """

    def __init__(self, runner: Runner) -> None:
        from carebound.engine.runner import Runner

        if not isinstance(runner, Runner):
            raise TypeError(
                f"AsyncRunner wraps a carebound Runner, not {type(runner).__name__}: "
                "AsyncRunner(Runner(client))"
            )
        self.runner = runner

    async def __aenter__(self) -> AsyncRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lifecycle and agents --------------------------------------------------------------

    async def close(self) -> None:
        """Close the Runner (see :meth:`Runner.close`)."""
        await asyncio.to_thread(self.runner.close)

    async def aclose(self) -> None:
        """Same as :meth:`close` (the name asyncio libraries use)."""
        await self.close()

    async def ping(self) -> None:
        """Check the store answers (see :meth:`Runner.ping`)."""
        await asyncio.to_thread(self.runner.ping)

    def agent(self, name: str) -> AgentDefinition:
        """The agent definition called ``name`` (no I/O, so not a coroutine)."""
        return self.runner.agent(name)

    @property
    def agent_names(self) -> list[str]:
        """Names of the agents this runner can start."""
        return self.runner.agent_names

    async def pack_for(self, run_id: str) -> PolicyPack:
        """The policy pack a run was started with (see :meth:`Runner.pack_for`)."""
        return await asyncio.to_thread(self.runner.pack_for, run_id)

    # -- runs --------------------------------------------------------------------------------

    async def start(
        self,
        agent: str,
        case: Mapping[str, Any],
        *,
        requester: str,
        policy: str | Path | PolicyPack | None = None,
        world: WorldSpec | None = None,
        run_id: str | None = None,
    ) -> RunView:
        """Start a run and drive it to its first stop (see :meth:`Runner.start`)."""
        return await asyncio.to_thread(
            self.runner.start,
            agent,
            case,
            requester=requester,
            policy=policy,
            world=world,
            run_id=run_id,
        )

    async def drive(self, run_id: str, *, lease_wait_s: float = 5.0) -> RunView:
        """Move a run as far as it can go now (see :meth:`Runner.drive`)."""
        return await asyncio.to_thread(self.runner.drive, run_id, lease_wait_s=lease_wait_s)

    async def get(self, run_id: str) -> RunView:
        """A run by id."""
        return await asyncio.to_thread(self.runner.get, run_id)

    async def list_runs(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered (see :meth:`Runner.list_runs`)."""
        return await asyncio.to_thread(
            self.runner.list_runs, status=status, agent=agent, limit=limit
        )

    async def search_runs(self, where: RunFilter, *, limit: int = 50, offset: int = 0) -> RunPage:
        """Runs matching ``where`` (see :meth:`Runner.search_runs`)."""
        return await asyncio.to_thread(self.runner.search_runs, where, limit=limit, offset=offset)

    async def purge(
        self, ended_before: datetime, *, archive: Path | None, dry_run: bool = False
    ) -> PurgeReport:
        """Delete the runs that ended before ``ended_before`` (see :meth:`Runner.purge`)."""
        return await asyncio.to_thread(
            self.runner.purge, ended_before, archive=archive, dry_run=dry_run
        )

    async def cancel(self, run_id: str, *, by: str, reason: str = "") -> RunView:
        """Stop a run for good (see :meth:`Runner.cancel`)."""
        return await asyncio.to_thread(self.runner.cancel, run_id, by=by, reason=reason)

    # -- holds and decisions ---------------------------------------------------------------

    async def pending(
        self,
        *,
        role: str | None = None,
        agent: str | None = None,
        overdue: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> list[ApprovalView]:
        """Paused steps, most urgent first (see :meth:`Runner.pending`)."""
        return await asyncio.to_thread(
            self.runner.pending, role=role, agent=agent, overdue=overdue, limit=limit, offset=offset
        )

    async def approval(self, approval_id: str) -> ApprovalView:
        """One approval by id."""
        return await asyncio.to_thread(self.runner.approval, approval_id)

    async def reveal(
        self,
        approval_id: str,
        *,
        viewer: str,
        role: str | None = None,
        via: Provenance | None = None,
    ) -> ApprovalView:
        """The approval with its PHI, for a viewer holding its role; audited as ``view_phi``
        (see :meth:`Runner.reveal`)."""
        return await asyncio.to_thread(
            self.runner.reveal, approval_id, viewer=viewer, role=role, via=via
        )

    async def reveal_run(
        self,
        run_id: str,
        *,
        viewer: str,
        roles: Iterable[str],
        role: str | None = None,
        via: Provenance | None = None,
        what: str = "run",
    ) -> None:
        """Record that ``viewer`` is shown the PHI of a run's ``what`` after checking their
        role (see :meth:`Runner.reveal_run`)."""
        await asyncio.to_thread(
            self.runner.reveal_run,
            run_id,
            viewer=viewer,
            roles=list(roles),
            role=role,
            via=via,
            what=what,
        )

    async def decide(self, approval_id: str, decision: Decision) -> DecideResult:
        """Apply a reviewer decision (see :meth:`Runner.decide`)."""
        return await asyncio.to_thread(self.runner.decide, approval_id, decision)

    # -- wake-ups ----------------------------------------------------------------------------

    async def deliver(
        self,
        match: str,
        payload: Mapping[str, Any] | None = None,
        *,
        event_id: str | None = None,
    ) -> list[str]:
        """Deliver an event to the runs waiting for it (see :meth:`Runner.deliver`)."""
        return await asyncio.to_thread(self.runner.deliver, match, payload, event_id=event_id)

    async def sweep(self) -> SweepReport:
        """Fire due timers and handle overdue holds (see :meth:`Runner.sweep`)."""
        return await asyncio.to_thread(self.runner.sweep)

    async def fire_timer(self, run_id: str, due: datetime) -> bool:
        """Fire one run's timer now (see :meth:`Runner.fire_timer`)."""
        return await asyncio.to_thread(self.runner.fire_timer, run_id, due)

    async def recover(self, *, older_than_ms: int = 0) -> list[str]:
        """Drive runs left mid-drive; their ids (see :meth:`Runner.recover`)."""
        return await asyncio.to_thread(self.runner.recover, older_than_ms=older_than_ms)

    async def recover_runs(self, *, older_than_ms: int = 0) -> RecoverReport:
        """Drive runs left mid-drive, each on its own (see :meth:`Runner.recover_runs`)."""
        return await asyncio.to_thread(self.runner.recover_runs, older_than_ms=older_than_ms)

    async def quarantined(self) -> list[str]:
        """Ids of the quarantined runs, oldest first."""
        return await asyncio.to_thread(self.runner.quarantined)

    # -- the worker pool ---------------------------------------------------------------------

    @property
    def drive_mode(self) -> DriveMode:
        """``inline`` or ``queue`` (see :class:`Runner`)."""
        return self.runner.drive_mode

    @property
    def work(self) -> WorkQueue:
        """The work queue the pool reads (see :attr:`Runner.work`)."""
        return self.runner.work

    def worker_pool(self, settings: PoolSettings | None = None) -> WorkerPool:
        """This process's share of the worker pool (see :meth:`Runner.worker_pool`; its
        ``run`` blocks: give it a thread of its own)."""
        return self.runner.worker_pool(settings)

    async def wait(
        self, run_id: str, *, past: str | None = None, timeout_s: float = 60.0
    ) -> RunView:
        """Wait for a run's next stop (see :meth:`Runner.wait`)."""
        return await asyncio.to_thread(self.runner.wait, run_id, past=past, timeout_s=timeout_s)

    async def retry_dead_letter(self, dead: DeadLetter) -> bool:
        """Enqueue a dead letter's run again (see :meth:`Runner.retry_dead_letter`)."""
        return await asyncio.to_thread(self.runner.retry_dead_letter, dead)

    # -- audit -------------------------------------------------------------------------------

    async def audit(self, run_id: str) -> list[AuditEvent]:
        """A run's audit trail."""
        return await asyncio.to_thread(self.runner.audit, run_id)

    async def verify(self, run_id: str) -> VerifyResult:
        """Check a run's audit hash chain."""
        return await asyncio.to_thread(self.runner.verify, run_id)

    async def audit_trail(
        self, run_id: str, *, checkpoints: Sequence[AuditCheckpoint] = ()
    ) -> AuditTrail:
        """A run's readable audit events and the check of its chain, read together (see
        :meth:`Runner.audit_trail`)."""
        return await asyncio.to_thread(self.runner.audit_trail, run_id, checkpoints=checkpoints)
