"""The per-process services the graph's nodes use (and the graph's state type, from
:mod:`~carebound.engine.run_state`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from carebound.approvals import ApprovalStore, ApprovalView
from carebound.assist import ModelConfig
from carebound.audit import AuditLog
from carebound.clock import Clock
from carebound.engine.run_state import RunState
from carebound.guardrails import PolicyPack
from carebound.state.ledger import EffectLedger
from carebound.tools import FactValue, ToolContext, ToolSpec

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
from carebound.tools.connectors import Connectors

__all__ = ["RunState", "Services"]


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
    connectors_for: Callable[[str, str], Connectors]
    """(run id, agent) -> the run's connectors."""
    model: BaseChatModel | None = None
    models: ModelConfig | None = None
    """The chat models per task (``carebound.assist``); ``model`` is its default."""
    decided: Mapping[str, ApprovalView] = field(default_factory=dict)
    """Approvals this process has just decided and is resuming runs past: final, so the hold
    node need not read them back."""
    heartbeat: Callable[[str, int], AbstractContextManager[object]] | None = None
    """(run id, fencing token) -> a context that keeps the run's lease alive while a tool
    call runs (``RunLease.heartbeat``)."""
    flush_checkpoint: Callable[[], None] = lambda: None
    """Make the drive's buffered checkpoint writes durable ahead of the next round trip
    (``RedisSaver.flush_ahead``): called right before an effect's ledger reserve and a hold's
    park, so each rides that round trip."""

    def tool_context(
        self, run_id: str, agent: str, spec: ToolSpec[Any], args: BaseModel
    ) -> ToolContext:
        """What a call of ``spec`` with ``args`` sees of its run, now: for its facts (the
        gate's policy check) and for running it."""
        return ToolContext(
            run_id=run_id,
            agent=agent,
            now=self.clock.now(),
            idempotency_key=spec.idempotency_key(run_id, args),
            connectors=self.connectors_for(run_id, agent),
            case=self.case_for(run_id),
        )

    def facts(
        self, run_id: str, agent: str, spec: ToolSpec[Any], args: BaseModel
    ) -> dict[str, FactValue]:
        """The facts the policy judges a call of ``spec`` with ``args`` on, now: its effect and
        scope, and the tool's own facts on its run's context (made only for a tool that has
        facts of its own)."""
        return spec.compute_facts(lambda: self.tool_context(run_id, agent, spec, args), args)
