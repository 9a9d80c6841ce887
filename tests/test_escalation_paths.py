"""Escalation goes only along the paths the policy pack declares for the rule that held the call,
for reviewers (real CLI, real Redis) and for the deadline sweep alike."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from carebound import DecisionRefusedError, Escalate
from carebound.cli import ExitCode
from carebound.guardrails import HoldRule, PolicyPackError, Reviewer, load_policy_pack
from tests.test_cli import cli, cli_json

PACKET_CASE = Path("scenarios/cases/packet_complete.json")
ROLE = "intake_coordinator"


def test_a_referral_acceptance_cannot_be_escalated_to_billing(env: str) -> None:
    report = cli_json(
        "run", "--agent", "packet_builder", "--case", str(PACKET_CASE), "--requester", "sam"
    )
    [pending] = report["pending"]
    approval, run_id = pending["approval_id"], report["run_id"]
    assert pending["tool"] == "set_referral_status"
    casey = ("--reviewer", "casey", "--role", ROLE)
    refused = cli("escalate", approval, *casey, "--to-role", "billing", code=ExitCode.REFUSED)
    assert "may not be escalated to 'billing'" in refused.stderr
    assert "supervisor, clinical_reviewer" in refused.stderr  # the hint lists the paths
    assert cli_json("inbox", "--role", "billing")["approvals"] == []
    billing = ("--reviewer", "billie", "--role", "billing")
    cli("approve", approval, *billing, code=ExitCode.REFUSED)
    assert cli_json("status", run_id)["record"]["status"] == "paused"
    # A declared path works, and then only that role decides.
    moved = cli_json("escalate", approval, *casey, "--to-role", "clinical_reviewer")
    assert moved["outcome"] == "escalated"
    cli("approve", approval, *billing, code=ExitCode.REFUSED)
    done = cli_json("approve", approval, "--reviewer", "robin", "--role", "clinical_reviewer")
    assert done["outcome"] == "decided"
    events = cli_json("audit", run_id)["events"]
    escalation = next(e for e in events if e["detail"].get("decision") == "escalate")
    assert escalation["detail"]["to_role"] == "clinical_reviewer"


def test_the_pack_declares_escalation_paths_per_rule(tmp_path: Path) -> None:
    pack = load_policy_pack("default")
    ref1 = pack.rule("REF-1")
    assert ref1 is not None and ref1.escalate_to == ["supervisor", "clinical_reviewer"]
    implied = HoldRule.model_validate(
        {"id": "X", "text": "t", "decision": "hold", "role": ROLE,
         "on_timeout": {"action": "escalate", "role": "supervisor"}}
    )  # fmt: skip
    assert implied.escalate_to == ["supervisor"]  # the timeout's path is declared by itself
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: p\nversion: '1'\nrules:\n"
        "  - {id: R, text: t, decision: hold, role: a, escalate_to: [b],\n"
        "     on_timeout: {action: escalate, role: c}}\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyPackError, match="escalates on timeout to 'c'"):
        load_policy_pack(bad)
    bad.write_text(
        "name: p\nversion: '1'\nrules:\n  - {id: R, text: t, decision: allow, escalate_to: [b]}\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyPackError, match="cannot declare escalate_to"):
        load_policy_pack(bad)


def _pack_with(rule: HoldRule, *, supervisors: bool = True) -> Any:
    pack = load_policy_pack("default")
    reviewers = pack.reviewers
    if not supervisors:
        reviewers = [
            Reviewer(id=r.id, name=r.name, roles=[x for x in r.roles if x != "supervisor"])
            for r in reviewers
        ]
    return pack.model_copy(update={"rules": [rule], "reviewers": reviewers})


def test_a_rule_without_declared_paths_cannot_be_escalated(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    rule = HoldRule(
        id="NOESC", text="No escalation.", decision="hold", role=ROLE,
        when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )  # fmt: skip
    runner = make_runner(policy=_pack_with(rule))
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    up = Escalate(reviewer="casey", role=ROLE, args_hash=request.args_hash, to_role="supervisor")
    with pytest.raises(DecisionRefusedError) as refused:
        runner.decide(request.approval_id, up)
    assert refused.value.code == "wrong_role"
    assert "declares no escalation" in (refused.value.hint or "")


def test_the_deadline_escalates_only_along_the_declared_path(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    rule = HoldRule(
        id="ESC", text="Escalates.", decision="hold", role=ROLE,
        when={"tool": "send_document_request"},  # type: ignore[arg-type]
        on_timeout={"action": "escalate", "role": "supervisor"},  # type: ignore[arg-type]
    )  # fmt: skip
    runner = make_runner(policy=_pack_with(rule))
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    runner.clock.advance(timedelta(days=2, minutes=1))
    assert runner.sweep().holds_escalated == 1
    assert runner.approval(request.approval_id).required_role == "supervisor"
    events = [e for e in runner.audit(request.run_id) if e.action == "decision"]
    assert events[-1].detail["to_role"] == "supervisor"
    assert events[-1].detail["channel"] == "worker"
    # With nobody holding the declared role, the deadline expires the hold instead.
    lonely = make_runner(policy=_pack_with(rule, supervisors=False))
    other = lonely.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    lonely.clock.advance(timedelta(days=2, minutes=1))
    report = lonely.sweep()
    assert report.holds_escalated == 0 and report.holds_expired >= 1
    assert lonely.get(other.run_id).status == "completed"


def test_every_hold_rule_of_the_shipped_pack_declares_where_it_may_go() -> None:
    pack = load_policy_pack("default")
    held_roles = {role for r in pack.reviewers for role in r.roles}
    for rule in pack.rules:
        if rule.decision == "hold":
            assert rule.escalate_to, rule.id
            assert set(rule.escalate_to) <= held_roles, rule.id
            assert "billing" not in rule.escalate_to or rule.role == "billing", rule.id
