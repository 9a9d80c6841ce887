"""The Runner for asyncio services.

Each method runs the synchronous :class:`~carebound.Runner` method in a worker thread
(``asyncio.to_thread``), so an event loop is never blocked by Redis round trips or graph steps.
The sync Runner is thread-safe for this use: every run is driven under its Redis lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carebound._principal import Provenance
from carebound._runner import DecideResult, RecoverReport, Runner, RunView, SweepReport
from carebound.approvals import ApprovalView, Decision
from carebound.audit import AuditEvent, VerifyResult
from carebound.guardrails import PolicyPack


class AsyncRunner:
    """Async twin of :class:`~carebound.Runner`; construct it around a Runner."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def aclose(self) -> None:
        """Close the Runner (see :meth:`Runner.close`)."""
        await asyncio.to_thread(self.runner.close)

    async def __aenter__(self) -> AsyncRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(
        self,
        agent: str,
        case: Mapping[str, Any],
        *,
        requester: str,
        policy: str | Path | PolicyPack | None = None,
        world: Any = None,
    ) -> RunView:
        """Start a run (see :meth:`Runner.start`)."""
        return await asyncio.to_thread(
            self.runner.start, agent, case, requester=requester, policy=policy, world=world
        )

    async def get(self, run_id: str) -> RunView:
        """A run by id."""
        return await asyncio.to_thread(self.runner.get, run_id)

    async def pending(
        self, *, role: str | None = None, agent: str | None = None, limit: int = 20
    ) -> list[ApprovalView]:
        """Paused steps, most urgent first."""
        return await asyncio.to_thread(self.runner.pending, role=role, agent=agent, limit=limit)

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

    async def decide(self, approval_id: str, decision: Decision) -> DecideResult:
        """Apply a reviewer decision (see :meth:`Runner.decide`)."""
        return await asyncio.to_thread(self.runner.decide, approval_id, decision)

    async def deliver(self, match: str, payload: Mapping[str, Any] | None = None) -> list[str]:
        """Deliver an event to the runs waiting for it."""
        return await asyncio.to_thread(self.runner.deliver, match, payload)

    async def sweep(self) -> SweepReport:
        """Fire due timers and handle overdue holds."""
        return await asyncio.to_thread(self.runner.sweep)

    async def recover_runs(self, *, older_than_ms: int = 0) -> RecoverReport:
        """Drive runs left mid-drive, each on its own (see :meth:`Runner.recover_runs`)."""
        return await asyncio.to_thread(self.runner.recover_runs, older_than_ms=older_than_ms)

    async def cancel(self, run_id: str, *, by: str, reason: str = "") -> RunView:
        """Cancel a run."""
        return await asyncio.to_thread(self.runner.cancel, run_id, by=by, reason=reason)

    async def audit(self, run_id: str) -> list[AuditEvent]:
        """A run's audit trail."""
        return await asyncio.to_thread(self.runner.audit, run_id)

    async def verify(self, run_id: str) -> VerifyResult:
        """Check a run's audit hash chain."""
        return await asyncio.to_thread(self.runner.verify, run_id)
