"""What the engine hands back: a run's view, a decision's result, sweep and recover reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import CallResult
from carebound.approvals import ApprovalView
from carebound.approvals._edits import ArgChange
from carebound.state.ledger import LedgerEntry
from carebound.state.runs import RunRecord, RunStatus

QUARANTINE_AFTER = 3
"""Drives of one run that fail in a row before it is quarantined (no longer retried)."""


class RunView(BaseModel):
    """A run as callers see it: its record, findings, call results, effects, pending hold."""

    model_config = ConfigDict(frozen=True)

    record: RunRecord
    findings: dict[str, Any] = Field(default_factory=dict)
    results: list[CallResult] = Field(default_factory=list)
    effects: list[LedgerEntry] = Field(default_factory=list)
    pending: ApprovalView | None = None
    steps: int = 0

    @property
    def run_id(self) -> str:
        """The run id."""
        return self.record.run_id

    @property
    def status(self) -> RunStatus:
        """The run's status."""
        return self.record.status

    @classmethod
    def of(
        cls,
        record: RunRecord,
        values: Mapping[str, Any],
        effects: list[LedgerEntry],
        pending: ApprovalView | None,
    ) -> RunView:
        """The view of a run from its record and its graph state's ``values``."""
        return cls(
            record=record,
            findings=values.get("findings", {}),
            results=[CallResult.model_validate(r) for r in values.get("results", [])],
            effects=effects,
            pending=pending,
            steps=values.get("steps", 0),
        )


class DecideResult(BaseModel):
    """What a reviewer's decision did (the engine's answer; the approval store's reply to its
    atomic step is ``carebound.approvals.DecideStepReply``)."""

    model_config = ConfigDict(frozen=True)

    outcome: str
    """``decided`` (the run moved on), ``awaiting_second_approver`` or ``escalated``."""
    run: RunView
    changes: list[ArgChange] = []
    """What the decision changed in the call's arguments, before -> after (an edit, or the
    approval of a two-person hold a first reviewer edited)."""


class SweepReport(BaseModel):
    """What one sweep did."""

    timers_fired: int = 0
    holds_expired: int = 0
    holds_escalated: int = 0
    runs_recovered: int = 0
    runs_failed: int = 0
    """Runs the sweep could not move on (an unexpected error; retried later, or quarantined)."""
    runs_quarantined: int = 0
    """Of those, runs that failed too often in a row and are no longer retried."""
    runs_resumed: int = 0
    """Runs parked on a system that came back (its breaker closed), retried at once."""
    replies_delivered: int = 0
    """Outreach replies collected from polling channels (CDex) and delivered to their runs."""


class RecoverReport(BaseModel):
    """What one :meth:`Runner.recover_runs` did, run by run."""

    recovered: list[str] = Field(default_factory=list)
    """Runs driven to their next stop."""
    failed: list[str] = Field(default_factory=list)
    """Runs whose drive failed with an unexpected error (logged by class, no PHI); each is
    retried by a later recover until it fails ``QUARANTINE_AFTER`` times in a row."""
    quarantined: list[str] = Field(default_factory=list)
    """Of the failed, those quarantined now."""
    queued: list[str] = Field(default_factory=list)
    """In queue mode: runs enqueued for a worker to drive (instead of driven here)."""
    left: list[str] = Field(default_factory=list)
    """Runs of an agent this process does not have, or started with connectors that reach
    other systems than this process's: left marked, untouched, for a process that has both
    (logged as ``run.agent_not_installed`` or ``run.connectors_mismatch``)."""
