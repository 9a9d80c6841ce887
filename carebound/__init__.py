"""carebound: bounded LangGraph agents for healthcare operations.

Agents propose tool calls; a gate outside the model checks every call against the agent's
typed grant and the organisation's hold policy, parks the run for a human reviewer when a
guardrail fires, and keeps the run's state in Redis so it can wait for days and resume anywhere.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound._agent import (
        AgentContext,
        AgentDefinition,
        CallResult,
        FinishSpec,
        Plan,
        PlannerView,
        ProposedCall,
        RunEvent,
        WaitSpec,
    )
    from carebound._async_runner import AsyncRunner
    from carebound._errors import (
        AlreadyDecidedError,
        CareboundError,
        DecisionRefusedError,
        LeaseLostError,
        NotFoundError,
        RunStateError,
        StoreUnavailableError,
        StoreWriteRefusedError,
    )
    from carebound._report import RunReport, run_report
    from carebound._runner import DecideResult, RecoverReport, Runner, RunView, SweepReport
    from carebound.approvals import (
        ApprovalRequest,
        ApprovalView,
        Approve,
        Decision,
        DecisionPacket,
        Edit,
        Escalate,
        Reject,
    )
    from carebound.clock import Clock, SystemClock, VirtualClock
    from carebound.guardrails import Grant, PolicyPack, load_policy_pack
    from carebound.tools import EffectClass, ToolContext, ToolSpec, tool

# Names load on first use, so `import carebound.cli` (and `carebound --help`) stays fast.
_EXPORTS: dict[str, str] = {
    "AgentContext": "carebound._agent",
    "AgentDefinition": "carebound._agent",
    "AlreadyDecidedError": "carebound._errors",
    "ApprovalRequest": "carebound.approvals",
    "ApprovalView": "carebound.approvals",
    "Approve": "carebound.approvals",
    "AsyncRunner": "carebound._async_runner",
    "CallResult": "carebound._agent",
    "CareboundError": "carebound._errors",
    "Clock": "carebound.clock",
    "DecideResult": "carebound._runner",
    "Decision": "carebound.approvals",
    "DecisionPacket": "carebound.approvals",
    "DecisionRefusedError": "carebound._errors",
    "Edit": "carebound.approvals",
    "EffectClass": "carebound.tools",
    "Escalate": "carebound.approvals",
    "FinishSpec": "carebound._agent",
    "Grant": "carebound.guardrails",
    "LeaseLostError": "carebound._errors",
    "NotFoundError": "carebound._errors",
    "Plan": "carebound._agent",
    "PlannerView": "carebound._agent",
    "PolicyPack": "carebound.guardrails",
    "ProposedCall": "carebound._agent",
    "Reject": "carebound.approvals",
    "RunEvent": "carebound._agent",
    "RunReport": "carebound._report",
    "RunStateError": "carebound._errors",
    "RunView": "carebound._runner",
    "Runner": "carebound._runner",
    "StoreUnavailableError": "carebound._errors",
    "StoreWriteRefusedError": "carebound._errors",
    "RecoverReport": "carebound._runner",
    "SweepReport": "carebound._runner",
    "SystemClock": "carebound.clock",
    "ToolContext": "carebound.tools",
    "ToolSpec": "carebound.tools",
    "VirtualClock": "carebound.clock",
    "WaitSpec": "carebound._agent",
    "load_policy_pack": "carebound.guardrails",
    "run_report": "carebound._report",
    "tool": "carebound.tools",
}

__all__ = [
    "AgentContext",
    "AgentDefinition",
    "AlreadyDecidedError",
    "ApprovalRequest",
    "ApprovalView",
    "Approve",
    "AsyncRunner",
    "CallResult",
    "CareboundError",
    "Clock",
    "DecideResult",
    "Decision",
    "DecisionPacket",
    "DecisionRefusedError",
    "Edit",
    "EffectClass",
    "Escalate",
    "FinishSpec",
    "Grant",
    "LeaseLostError",
    "NotFoundError",
    "Plan",
    "PlannerView",
    "PolicyPack",
    "ProposedCall",
    "RecoverReport",
    "Reject",
    "RunEvent",
    "RunReport",
    "RunStateError",
    "RunView",
    "Runner",
    "StoreUnavailableError",
    "StoreWriteRefusedError",
    "SweepReport",
    "SystemClock",
    "ToolContext",
    "ToolSpec",
    "VirtualClock",
    "WaitSpec",
    "load_policy_pack",
    "run_report",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carebound' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
