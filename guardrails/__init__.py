"""carebound.guardrails: grants, hold policies, budgets, reviewer authorisation, and the gate
(:func:`judge`, one tagged verdict per call: see ``_gate``)."""

from carebound._errors import format_validation_error
from carebound.guardrails._authorize import (
    approver_identity,
    authorize_decision,
    check_escalation,
    escalation_targets,
)
from carebound.guardrails._gate import (
    Allowed,
    CallBudget,
    Denied,
    GateVerdict,
    Held,
    InvalidArgs,
    OverBudget,
    PolicyCheck,
    UnknownTool,
    arg_problems,
    judge,
)
from carebound.guardrails._grants import Grant, PermissionResult, ScopeGrant, check_permission
from carebound.guardrails._pack import (
    AgentPolicy,
    Budgets,
    PolicyPack,
    PolicyPackError,
    Reviewer,
    load_policy_pack,
)
from carebound.guardrails._policy import (
    HoldRule,
    OnTimeout,
    PolicyVerdict,
    RuleMatch,
    evaluate_rules,
)

__all__ = [
    "AgentPolicy",
    "Allowed",
    "Budgets",
    "CallBudget",
    "Denied",
    "GateVerdict",
    "Grant",
    "Held",
    "HoldRule",
    "InvalidArgs",
    "OnTimeout",
    "OverBudget",
    "PermissionResult",
    "PolicyCheck",
    "PolicyPack",
    "PolicyPackError",
    "PolicyVerdict",
    "Reviewer",
    "RuleMatch",
    "ScopeGrant",
    "UnknownTool",
    "approver_identity",
    "arg_problems",
    "authorize_decision",
    "check_escalation",
    "check_permission",
    "escalation_targets",
    "evaluate_rules",
    "format_validation_error",
    "judge",
    "load_policy_pack",
]
