"""carebound.guardrails: grants, hold policies, budgets, reviewer authorisation, redaction."""

from carebound._errors import format_validation_error
from carebound.guardrails._authorize import (
    approver_identity,
    authorize_decision,
    check_escalation,
    escalation_targets,
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
    "approver_identity",
    "authorize_decision",
    "check_escalation",
    "check_permission",
    "escalation_targets",
    "evaluate_rules",
    "format_validation_error",
    "load_policy_pack",
]
