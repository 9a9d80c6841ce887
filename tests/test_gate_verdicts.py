"""The gate (carebound.guardrails._gate): one judgement per call, as a tagged verdict.

Each kind is produced by the check that decides it, in the gate's order (budget, tool,
arguments, grant, policy), and carries what the engine needs next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from carebound.guardrails import (
    CallBudget,
    Grant,
    HoldRule,
    PolicyCheck,
    RuleMatch,
    ScopeGrant,
    judge,
)
from carebound.tools import FactValue, ToolContext, ToolSpec, tool


class ChangeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    amount: int = 0


@tool(scope="ehr:Patient.write", effect="reversible", constraints={"field": "field"})
def change_field(ctx: ToolContext, args: ChangeArgs) -> None:
    """Change a patient field."""


TOOLS: Mapping[str, ToolSpec[Any]] = {"change_field": change_field}
GRANT = Grant(scopes=[ScopeGrant(scope="ehr:Patient.*", fields=["telecom", "address"])])
RULES = [
    HoldRule(
        id="R-DENY",
        text="No large amounts.",
        when=RuleMatch(tool="change_field", amount_over=100),  # type: ignore[arg-type]
        decision="deny",
    ),
    HoldRule(
        id="R-HOLD",
        text="Addresses need a coordinator.",
        when=RuleMatch(facts={"field": "address"}),
        decision="hold",
        role="intake_coordinator",
    ),
]


def facts_of(spec: ToolSpec[Any], args: BaseModel) -> Mapping[str, FactValue]:
    values = args.model_dump()
    return {"scope": spec.scope, "field": values["field"], "amount": values["amount"]}


POLICY = PolicyCheck(rules=RULES, facts_of=facts_of)


def gate(tool_name: str, args: dict[str, Any], **kw: Any) -> Any:
    return judge(tool_name, args, tools=TOOLS, grant=GRANT, **kw)


def test_allowed_carries_the_validated_arguments_facts_and_the_grant_reason() -> None:
    verdict = gate("change_field", {"field": "telecom"}, policy=POLICY)
    assert verdict.kind == "allowed"
    assert verdict.args == ChangeArgs(field="telecom")
    assert verdict.facts == {"scope": "ehr:Patient.write", "field": "telecom", "amount": 0}
    assert verdict.permission == "granted by scope 'ehr:Patient.*'" == verdict.reason


def test_over_budget_comes_first_even_for_an_unknown_tool() -> None:
    verdict = gate("no_such_tool", {}, budget=CallBudget(used=3, limit=3))
    assert verdict.kind == "over_budget"
    assert verdict.reason == "tool-call budget of 3 used up"
    within = gate("change_field", {"field": "telecom"}, budget=CallBudget(used=2, limit=3))
    assert within.kind == "allowed"


def test_unknown_tool() -> None:
    verdict = gate("wire_funds", {"amount": 9000}, policy=POLICY)
    assert verdict.kind == "unknown_tool"
    assert verdict.reason == "unknown tool 'wire_funds': the agent has no such tool"


def test_invalid_arguments_name_each_problem_and_the_unknown_fields() -> None:
    verdict = gate("change_field", {"amount": "lots", "colour": "red"}, policy=POLICY)
    assert verdict.kind == "invalid_args"
    assert verdict.unknown_fields == ("colour",)
    assert verdict.problems == (
        "field: Field required",
        "amount: Input should be a valid integer, unable to parse string as an integer",
        "unknown field 'colour'",
    )
    assert verdict.reason.startswith("invalid arguments for change_field: field: Field required")


def test_denied_by_the_grant_before_the_policy_is_asked() -> None:
    asked: list[str] = []

    def watching(spec: ToolSpec[Any], args: BaseModel) -> Mapping[str, FactValue]:
        asked.append(spec.name)
        return facts_of(spec, args)

    verdict = gate(
        "change_field", {"field": "birthDate"}, policy=PolicyCheck(rules=RULES, facts_of=watching)
    )
    assert verdict.kind == "denied" and verdict.by == "grant"
    assert "field(s) birthDate are outside the grant" in verdict.reason
    assert verdict.permission == verdict.reason and verdict.rule_id is None
    assert asked == []  # no facts computed for a call the grant refuses


def test_denied_by_a_rule_keeps_the_grants_answer() -> None:
    verdict = gate("change_field", {"field": "telecom", "amount": 500}, policy=POLICY)
    assert verdict.kind == "denied" and verdict.by == "rule"
    assert verdict.rule_id == "R-DENY"
    assert verdict.reason == "policy rule R-DENY: No large amounts."
    assert verdict.permission == "granted by scope 'ehr:Patient.*'"


def test_held_by_a_rule_names_the_role_and_the_facts_it_saw() -> None:
    verdict = gate("change_field", {"field": "address"}, policy=POLICY)
    assert verdict.kind == "held"
    assert verdict.policy.rule_id == "R-HOLD" and verdict.policy.role == "intake_coordinator"
    assert verdict.facts["field"] == "address"
    assert verdict.reason == "held by policy rule R-HOLD: Addresses need a coordinator."


@pytest.mark.parametrize(
    ("args", "kind"),
    [({"field": "address"}, "allowed"), ({"field": "birthDate"}, "denied")],
)
def test_without_a_policy_check_only_the_grant_is_asked(args: dict[str, Any], kind: str) -> None:
    """Execution's recheck: a held call that was approved is not held again."""
    assert gate("change_field", args).kind == kind
