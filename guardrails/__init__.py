"""carebound.guardrails: grants, hold policies, budgets, reviewer authorisation, redaction."""

from carebound.guardrails._authorize import authorize_decision
from carebound.guardrails._grants import Grant, PermissionResult, ScopeGrant, check_permission
from carebound.guardrails._pack import (
    AgentPolicy,
    Budgets,
    PolicyPack,
    PolicyPackError,
    Reviewer,
    format_validation_error,
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
    "Budgets",
    "Grant",
    "HoldRule",
    "OnTimeout",
    "PermissionResult",
    "PolicyPack",
    "PolicyPackError",
    "PolicyVerdict",
    "Reviewer",
    "RuleMatch",
    "ScopeGrant",
    "authorize_decision",
    "check_permission",
    "evaluate_rules",
    "format_validation_error",
    "load_policy_pack",
]
