"""Grants: what one agent may do, checked on every proposed call.

A grant lists scopes with optional constraints. A call whose scope is not granted, or whose
arguments break a constraint, is denied: audited, fed back to the planner, never executed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carebound.tools import ToolSpec


class ScopeGrant(BaseModel):
    """One granted scope and the limits on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: str = Field(description="Scope pattern, e.g. 'ehr:Patient.write' or 'ehr:*.read'.")
    fields: list[str] | None = Field(
        default=None,
        description="For tools with a 'field' constraint: the only fields the agent may change.",
    )
    max_amount: Decimal | None = Field(
        default=None, description="For tools with an 'amount' constraint: the largest amount."
    )
    recipients: list[str] | None = Field(
        default=None,
        description="For tools with a 'recipient' constraint: allowed recipients (None = any).",
    )


class Grant(BaseModel):
    """Everything one agent may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scopes: list[ScopeGrant] = Field(default_factory=list, description="The granted scopes.")

    def matching(self, scope: str) -> ScopeGrant | None:
        """The first scope grant that covers ``scope``, if any."""
        for granted in self.scopes:
            if fnmatchcase(scope, granted.scope):
                return granted
        return None


class PermissionResult(BaseModel):
    """Outcome of a permission check."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str
    """Why: the granted scope that allowed it, or what was missing or exceeded."""


def check_permission(grant: Grant, spec: ToolSpec[Any], args: BaseModel) -> PermissionResult:
    """Check one call against an agent's grant: scope first, then each constraint."""
    granted = grant.matching(spec.scope)
    if granted is None:
        return PermissionResult(
            allowed=False, reason=f"scope {spec.scope!r} is not in the agent's grant"
        )
    values = args.model_dump(mode="json")
    for kind, arg_name in spec.constraints.items():
        problem = _constraint_problem(kind, values.get(arg_name), granted)
        if problem:
            return PermissionResult(allowed=False, reason=f"{spec.scope}: {problem}")
    return PermissionResult(allowed=True, reason=f"granted by scope {granted.scope!r}")


def _constraint_problem(kind: str, value: Any, granted: ScopeGrant) -> str | None:
    if kind == "field" and granted.fields is not None:
        changed = value if isinstance(value, list) else [value]
        outside = [str(f) for f in changed if f not in granted.fields]
        if outside:
            return f"field(s) {', '.join(outside)} are outside the grant ({granted.fields})"
    if kind == "amount" and granted.max_amount is not None:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return f"amount {value!r} is not a number"
        if amount > granted.max_amount:
            return f"amount {amount} exceeds the granted limit {granted.max_amount}"
    if kind == "recipient" and granted.recipients is not None and value not in granted.recipients:
        return f"recipient {value!r} is not an allowed recipient"
    return None
