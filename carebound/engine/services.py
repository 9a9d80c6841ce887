"""The graph's state and the per-process services its nodes use."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypedDict

from carebound.approvals import ApprovalStore, ApprovalView
from carebound.audit import AuditLog
from carebound.clock import Clock
from carebound.guardrails import PolicyPack
from carebound.state.ledger import EffectLedger


class RunState(TypedDict, total=False):
    """A run's graph state. JSON values only: it is checkpointed without pickle."""

    run_id: str
    requester: str
    started_at: str
    queue: list[dict[str, Any]]
    current: dict[str, Any] | None
    results: list[dict[str, Any]]
    events: list[dict[str, Any]]
    findings: dict[str, Any]
    memory: dict[str, Any]
    steps: int
    tool_calls: int
    turn: int
    status: str
    summary: str
    wait: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class Services:
    """The per-process services the graph's nodes use."""

    prefix: str
    clock: Clock
    approvals: ApprovalStore
    ledger: EffectLedger
    audit: AuditLog
    pack_for: Callable[[str], PolicyPack]
    """Run id -> the policy pack the run was started with."""
    case_for: Callable[[str], Mapping[str, Any]]
    world_for: Callable[[str], Any]
    model: Any = None
    decided: Mapping[str, ApprovalView] = field(default_factory=dict)
    """Approvals this process has just decided and is resuming runs past: final, so the hold
    node need not read them back."""
    heartbeat: Callable[[str, int], AbstractContextManager[object]] | None = None
    """(run id, fencing token) -> a context that keeps the run's lease alive while a tool
    call runs (``RunLease.heartbeat``)."""
