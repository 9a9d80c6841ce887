"""Policy packs load from YAML with errors that name the file, the place and the problem;
grants and rules decide as written."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from carebound.guardrails import (
    Grant,
    PolicyPackError,
    ScopeGrant,
    check_permission,
    evaluate_rules,
    load_policy_pack,
)
from carebound.tools import ToolContext, ToolDefinitionError, tool


def test_default_pack_loads_with_reviewers_for_every_role_it_uses() -> None:
    pack = load_policy_pack("default")
    held_roles = {r.role for r in pack.rules if r.decision == "hold"}
    escalation_roles = {r.on_timeout.role for r in pack.rules if r.on_timeout.role}
    directory_roles = {role for r in pack.reviewers for role in r.roles}
    assert held_roles | escalation_roles <= directory_roles


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nversion: 1\nrules: [", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: x\n", "version: Field required"),
        (
            "name: x\nversion: '1'\nrules:\n  - {id: R1, text: t, decision: hold}\n",
            "rules[0]: Value error, rule 'R1' holds but names no reviewer role",
        ),
        (
            "name: x\nversion: '1'\nrules:\n  - {id: R1, text: t, decision: maybe}\n",
            "rules[0].decision: Input should be 'allow', 'deny' or 'hold'",
        ),
        (
            "name: x\nversion: '1'\nagents: {demo: {grant: {scopes: [{scope: a, limit: 3}]}}}\n",
            "agents.demo.grant.scopes[0].limit: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_pack_errors_name_file_place_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    with pytest.raises(PolicyPackError) as info:
        load_policy_pack(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert info.value.hint


def test_unknown_pack_name() -> None:
    with pytest.raises(PolicyPackError, match="not found"):
        load_policy_pack("no-such-pack")


class FieldArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    amount: float = 0
    to: str = ""


@tool(
    scope="ehr:Patient.write",
    effect="reversible",
    constraints={"field": "field", "amount": "amount", "recipient": "to"},
)
def change(ctx: ToolContext, args: FieldArgs) -> None:
    """Change a field."""


def test_grant_scopes_and_constraints() -> None:
    grant = Grant(
        scopes=[
            ScopeGrant(scope="ehr:Patient.*", fields=["telecom"], max_amount=10, recipients=["a"])
        ]
    )
    assert check_permission(grant, change, FieldArgs(field="telecom", amount=5, to="a")).allowed
    assert not check_permission(grant, change, FieldArgs(field="birthDate", to="a")).allowed
    over = check_permission(grant, change, FieldArgs(field="telecom", amount=11, to="a"))
    assert not over.allowed and "exceeds the granted limit" in over.reason
    assert not check_permission(grant, change, FieldArgs(field="telecom", to="b")).allowed
    assert not check_permission(Grant(), change, FieldArgs(field="telecom")).allowed


def test_first_matching_rule_decides() -> None:
    pack = load_policy_pack("default")
    not_on_file = {"scope": "outreach:fax.send", "effect": "external", "recipient_on_file": False}
    on_file = {**not_on_file, "recipient_on_file": True}
    assert evaluate_rules(pack.rules, "send_document_request", not_on_file).rule_id == "OUT-1"
    assert evaluate_rules(pack.rules, "send_document_request", on_file).rule_id == "OUT-2"
    allowed = evaluate_rules(pack.rules, "read_referral", {"scope": "ehr:x.read"})
    assert allowed.decision == "allow" and allowed.rule_id is None


def test_tool_declaration_errors() -> None:
    with pytest.raises(ToolDefinitionError, match="must be a pydantic model"):

        @tool(scope="x", effect="read")
        def bad(ctx: ToolContext, args: int) -> None:
            """Bad."""

    with pytest.raises(ToolDefinitionError, match="is not a field"):

        @tool(scope="x", effect="read", key=("nope",))
        def bad_key(ctx: ToolContext, args: FieldArgs) -> None:
            """Bad key."""


def test_tools_cannot_be_invoked_around_the_gate() -> None:
    lc_tool = change.as_langchain_tool()
    assert lc_tool.name == "change"
    with pytest.raises(ToolDefinitionError, match="outside the carebound gate"):
        lc_tool.invoke({"field": "telecom"})


def test_every_tool_a_rule_of_the_default_pack_names_is_one_an_agent_may_call() -> None:
    # A rule naming a tool no shipped agent has (or none is granted) never fires: a renamed
    # tool would leave its rule dead without anyone noticing. OUT-2 names the demo agent's
    # send_document_request (the chaser's send_request_attempt is governed by OUT-1/3/5).
    from carebound.agents import registry

    pack = load_policy_pack("default")
    agents = registry()
    callable_by: dict[str, list[str]] = {}
    for name, agent in agents.items():
        scopes = [g.scope for g in pack.agent_policy(name).grant.scopes]
        for spec in agent.tools.values():
            if any(fnmatchcase(spec.scope, s) for s in scopes):
                callable_by.setdefault(spec.name, []).append(name)
    for rule in pack.rules:
        named = rule.when.tool
        for tool_name in [named] if isinstance(named, str) else named or []:
            assert callable_by.get(tool_name), f"{rule.id} names {tool_name}, which no agent calls"
    [out2] = [r for r in pack.rules if r.id == "OUT-2"]
    assert callable_by["send_document_request"] == ["demo"]
    assert "the demo agent" in out2.text  # its words say whose request it holds
