"""carebound: bounded LangGraph agents for healthcare operations.

Agents propose tool calls; a gate outside the model checks every call against the agent's
typed grant and the organisation's hold policy, parks the run for a human reviewer when a
guardrail fires, and keeps the run's state in Redis so it can wait for days and resume anywhere.
"""

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
)
from carebound._report import RunReport, run_report
from carebound._runner import DecideResult, Runner, RunView, SweepReport
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
    "Reject",
    "RunEvent",
    "RunReport",
    "RunStateError",
    "RunView",
    "Runner",
    "StoreUnavailableError",
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
