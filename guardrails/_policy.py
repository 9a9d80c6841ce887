"""Hold policies: the declarative rules that allow, deny or hold a proposed call.

A policy pack is a YAML file per organisation. Rules are tried in order; the first rule whose
``when`` matches decides. A call no rule matches is allowed (the grant already bounds it).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound._limits import BoundedDuration
from carebound.tools import FactValue

Risk = Literal["low", "medium", "high"]


class RuleMatch(BaseModel):
    """When a rule applies. Every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str | list[str] | None = Field(default=None, description="Tool name(s).")
    scope: str | None = Field(default=None, description="Scope pattern, e.g. 'outreach:*'.")
    effect: Literal["read", "reversible", "external"] | None = Field(
        default=None, description="Effect class of the tool."
    )
    facts: dict[str, FactValue | list[FactValue]] = Field(
        default_factory=dict,
        description="Fact name -> required value (a list means any of them).",
    )
    amount_over: Decimal | None = Field(
        default=None, description="Matches when the fact 'amount' is greater than this."
    )

    def matches(self, tool: str, facts: dict[str, FactValue]) -> bool:
        """Whether this condition holds for a call of ``tool`` with ``facts``."""
        if self.tool is not None:
            names = [self.tool] if isinstance(self.tool, str) else self.tool
            if tool not in names:
                return False
        if self.scope is not None and not fnmatchcase(str(facts.get("scope")), self.scope):
            return False
        if self.effect is not None and facts.get("effect") != self.effect:
            return False
        for name, wanted in self.facts.items():
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if name not in facts or facts[name] not in allowed:
                return False
        if self.amount_over is not None:
            try:
                if Decimal(str(facts.get("amount"))) <= self.amount_over:
                    return False
            except InvalidOperation:
                return False
        return True


class OnTimeout(BaseModel):
    """What happens to a hold nobody decided by its deadline. Never 'approve'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["reject", "escalate"] = "reject"
    role: str | None = Field(default=None, description="Role to escalate to (for 'escalate').")

    @model_validator(mode="after")
    def _escalation_has_role(self) -> OnTimeout:
        if self.action == "escalate" and not self.role:
            raise ValueError("on_timeout.action 'escalate' needs a role")
        return self


class HoldRule(BaseModel):
    """One rule of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable rule id, cited in decision packets and the audit trail.")
    text: str = Field(description="The rule's wording, shown to reviewers.")
    when: RuleMatch = Field(default_factory=RuleMatch, description="When the rule applies.")
    decision: Literal["allow", "deny", "hold"] = Field(description="What the rule decides.")
    role: str | None = Field(default=None, description="Reviewer role a hold needs.")
    risk: Risk = Field(default="medium", description="Risk tier shown in the inbox.")
    deadline: BoundedDuration = Field(
        default=timedelta(days=2), description="How long a hold may wait (ISO 8601, e.g. P2D)."
    )
    two_person: bool = Field(default=False, description="A hold needs two distinct approvers.")
    on_timeout: OnTimeout = Field(default_factory=OnTimeout, description="Overdue behaviour.")
    escalate_to: list[str] = Field(
        default_factory=list,
        description="Roles a reviewer (or the deadline, see on_timeout) may escalate this rule's "
        "holds to; no other escalation is accepted. Default: the on_timeout role, if any.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_escalation(cls, data: Any) -> Any:
        # A rule that escalates on timeout declares that path even when it names no other.
        if isinstance(data, dict) and "escalate_to" not in data:
            timeout = data.get("on_timeout")
            if isinstance(timeout, OnTimeout):
                timeout = timeout.model_dump()
            if (
                isinstance(timeout, dict)
                and timeout.get("action") == "escalate"
                and timeout.get("role")
            ):
                data = {**data, "escalate_to": [timeout["role"]]}
        return data

    @model_validator(mode="after")
    def _hold_has_role(self) -> HoldRule:
        if self.decision == "hold" and not self.role:
            raise ValueError(f"rule {self.id!r} holds but names no reviewer role")
        if self.escalate_to and self.decision != "hold":
            raise ValueError(f"rule {self.id!r} does not hold, so it cannot declare escalate_to")
        timeout_role = self.on_timeout.role if self.on_timeout.action == "escalate" else None
        if timeout_role and timeout_role not in self.escalate_to:
            raise ValueError(
                f"rule {self.id!r} escalates on timeout to {timeout_role!r}, which its "
                f"escalate_to ({', '.join(self.escalate_to) or 'empty'}) does not declare"
            )
        return self


class PolicyVerdict(BaseModel):
    """What the policy decided for one call, and which rule decided it."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["allow", "deny", "hold"]
    rule_id: str | None
    """The rule that fired (None: no rule matched, allowed by default)."""
    rule_text: str
    role: str | None = None
    risk: Risk = "low"
    deadline: timedelta = timedelta(days=2)
    two_person: bool = False
    on_timeout: OnTimeout = OnTimeout()


def evaluate_rules(rules: list[HoldRule], tool: str, facts: dict[str, FactValue]) -> PolicyVerdict:
    """Decide one call: the first matching rule wins; no match means allow."""
    for rule in rules:
        if rule.when.matches(tool, facts):
            return PolicyVerdict(
                decision=rule.decision,
                rule_id=rule.id,
                rule_text=rule.text,
                role=rule.role,
                risk=rule.risk,
                deadline=rule.deadline,
                two_person=rule.two_person,
                on_timeout=rule.on_timeout,
            )
    return PolicyVerdict(
        decision="allow", rule_id=None, rule_text="no hold rule matched; the grant bounds the call"
    )
