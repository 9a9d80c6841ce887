"""The two-person rule counts distinct principals over the same final arguments: an edit is one
approval of the edited arguments, one principal never supplies two approvals (real CLI, real
Redis; the library for authenticated principals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from carebound import Approve, DecisionRefusedError, Edit
from carebound._principal import Provenance
from carebound.cli import ExitCode
from carebound.guardrails import HoldRule, load_policy_pack
from carebound.tools.connectors.simulated import World
from tests.test_cli import CASE, FAX, cli, cli_json

ROLE = "intake_coordinator"
AS = {
    name: ("--reviewer", name, "--role", ROLE) for name in ("casey", "jordan", "JORDAN ", "Casey")
}


@pytest.fixture
def two_person_run(env: str, tmp_path: Path) -> tuple[str, str]:
    """A demo run parked on a two-person hold (OUT-2 made two-person); (approval, run id)."""
    data = yaml.safe_load(Path("guardrails/packs/default.yaml").read_text(encoding="utf-8"))
    for rule in data["rules"]:
        if rule["id"] == "OUT-2":
            rule["two_person"] = True
    pack = tmp_path / "two_person.yaml"
    pack.write_text(yaml.safe_dump(data), encoding="utf-8")
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE), encoding="utf-8")
    report = cli_json(
        "run", "--agent", "demo", "--case", str(case), "--requester", "sam", "--policy", str(pack)
    )
    return report["pending"][0]["approval_id"], report["run_id"]


def _status(run_id: str) -> str:
    return str(cli_json("status", run_id)["record"]["status"])


def _effects(run_id: str) -> list[Any]:
    return list(cli_json("status", run_id)["effects"])


def test_one_reviewer_editing_with_unchanged_arguments_does_not_execute(
    two_person_run: tuple[str, str],
) -> None:
    approval, run_id = two_person_run
    first = cli_json("edit", approval, *AS["casey"], "--set", f"to={FAX}")
    assert first["outcome"] == "awaiting_second_approver"
    assert _status(run_id) == "paused" and _effects(run_id) == []
    for same in ("casey", "Casey"):  # the same person, however spelled, is refused
        again = cli("approve", approval, *AS[same], code=ExitCode.REFUSED)
        assert "already approved" in again.stderr
        cli("edit", approval, *AS[same], "--set", f"to={FAX}", code=ExitCode.REFUSED)
    assert _status(run_id) == "paused" and _effects(run_id) == []
    second = cli_json("approve", approval, *AS["jordan"])
    assert second["outcome"] == "decided"
    assert _status(run_id) == "waiting"
    assert [e["status"] for e in _effects(run_id)] == ["done"]


def test_an_edit_is_one_approval_of_the_new_arguments(two_person_run: tuple[str, str]) -> None:
    approval, run_id = two_person_run
    proposed = cli_json("inbox")["approvals"][0]
    before_hash = cli_json("show", approval)["approval"]["request"]["args_hash"]
    edited = cli_json("edit", approval, *AS["casey"], "--set", "note=Fax it today.")
    assert edited["outcome"] == "awaiting_second_approver"
    # The second reviewer sees the call as edited next to what the agent proposed.
    page = cli("show", approval).stdout
    assert "Edited call" in page and "awaiting a second approval" in page
    assert "Fax it today." in page and "Please fax the most recent progress note." in page
    shown = cli_json("show", approval)["approval"]
    new_hash = shown["request"]["args_hash"]
    assert new_hash != before_hash and shown["status"] == "pending"
    assert shown["approvers"] == ["casey"]
    assert proposed["approval_id"] == approval
    # What the first reviewer approved is gone: the old arguments cannot be approved any more.
    stale = cli(
        "approve", approval, *AS["jordan"], "--args-hash", before_hash, code=ExitCode.REFUSED
    )
    assert "stale" in stale.stderr
    cli("approve", approval, *AS["casey"], code=ExitCode.REFUSED)  # the editor approved already
    assert _effects(run_id) == []
    done = cli_json("approve", approval, *AS["jordan"], "--args-hash", new_hash)
    assert done["outcome"] == "decided"
    revealed = cli_json("show", approval, "--reveal", "--reviewer", "jordan", "--role", ROLE)
    record = revealed["approval"]["record"]
    assert record["approvers"] == ["casey", "jordan"]
    assert [(c["field"], c["after"]) for c in record["changes"]] == [("note", "Fax it today.")]
    assert [e["status"] for e in _effects(run_id)] == ["done"]


def test_a_second_edit_restarts_the_count(two_person_run: tuple[str, str]) -> None:
    approval, run_id = two_person_run
    cli_json("approve", approval, *AS["casey"])
    # jordan changes the call: casey's approval was of other arguments and no longer counts.
    assert (
        cli_json("edit", approval, *AS["jordan"], "--set", "note=Urgent.")["outcome"]
        == "awaiting_second_approver"
    )
    assert cli_json("show", approval)["approval"]["approvers"] == ["jordan"]
    cli("approve", approval, *AS["JORDAN "], code=ExitCode.REFUSED)
    assert _effects(run_id) == []
    assert cli_json("approve", approval, *AS["casey"])["outcome"] == "decided"
    assert [e["status"] for e in _effects(run_id)] == ["done"]


def test_one_authenticated_principal_cannot_supply_both_approvals(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1",
        text="Two coordinators confirm.",
        decision="hold",
        role=ROLE,
        two_person=True,
        when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )
    runner = make_runner(policy=pack.model_copy(update={"rules": [rule]}))
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    request = view.pending.request
    bridge = Provenance(channel="api", principal="token:bridge", kind="service", authenticated=True)
    first = Approve(reviewer="casey", role=ROLE, args_hash=request.args_hash, via=bridge)
    assert runner.decide(request.approval_id, first).outcome == "awaiting_second_approver"
    # The same token naming another reviewer is still the same principal.
    second = Approve(reviewer="jordan", role=ROLE, args_hash=request.args_hash, via=bridge)
    with pytest.raises(DecisionRefusedError) as refused:
        runner.decide(request.approval_id, second)
    assert refused.value.code == "same_approver"
    edit = Edit(
        reviewer="jordan", role=ROLE, args_hash=request.args_hash, via=bridge, args=request.args
    )
    with pytest.raises(DecisionRefusedError) as refused:
        runner.decide(request.approval_id, edit)
    assert refused.value.code == "same_approver"
    outreach = World.attach(runner.client, request.run_id, prefix=runner.prefix).outreach
    assert outreach.effects() == []
    person = Provenance(channel="web", principal="jordan", kind="reviewer", authenticated=True)
    last = Approve(reviewer="jordan", role=ROLE, args_hash=request.args_hash, via=person)
    assert runner.decide(request.approval_id, last).outcome == "decided"
    assert len(outreach.effects()) == 1


def test_an_edited_two_person_call_runs_with_the_edited_arguments(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1",
        text="Two coordinators confirm.",
        decision="hold",
        role=ROLE,
        two_person=True,
        when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )
    runner = make_runner(policy=pack.model_copy(update={"rules": [rule]}))
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    args = {**request.args, "note": "Edited by casey."}
    edit = Edit(reviewer="casey", role=ROLE, args_hash=request.args_hash, args=args)
    result = runner.decide(request.approval_id, edit)
    assert result.outcome == "awaiting_second_approver"
    assert [(c.field, c.after) for c in result.changes] == [("note", "Edited by casey.")]
    pending = runner.approval(request.approval_id)
    assert pending.request.args["note"] == "Edited by casey."
    assert pending.request.original_args == request.args
    second = Approve(reviewer="jordan", role=ROLE, args_hash=pending.request.args_hash)
    assert runner.decide(request.approval_id, second).outcome == "decided"
    outreach = World.attach(runner.client, request.run_id, prefix=runner.prefix).outreach
    [sent] = outreach.effects()
    assert "Edited by casey." in json.dumps(sent, default=str)
    edit_event, approve_event = [e for e in runner.audit(request.run_id) if e.action == "decision"]
    assert edit_event.detail["outcome"] == "partial" and edit_event.detail["approvers"] == "casey"
    assert edit_event.detail["edit.note.after"] == "Edited by casey."
    assert approve_event.detail["approvers"] == "casey,jordan"
    assert approve_event.detail["edit.note.after"] == "Edited by casey."  # the final arguments


def test_a_pending_edit_of_a_phi_argument_stays_masked(env: str, tmp_path: Path) -> None:
    """The proposal an edit replaced (original_args) and the changes of the decision record are
    masked like the arguments themselves until a reveal."""
    data = yaml.safe_load(Path("guardrails/packs/default.yaml").read_text(encoding="utf-8"))
    for rule in data["rules"]:
        rule["two_person"] = rule["id"] in ("REC-3", "DEM-1")
    pack = tmp_path / "two_person.yaml"
    pack.write_text(yaml.safe_dump(data), encoding="utf-8")
    report = cli_json(
        "run", "--agent", "reconciler", "--case", "scenarios/cases/reconcile_dob_swap.json",
        "--ehr", "scenarios/ehr/reconcile_dob_swap.json", "--requester", "sam",
        "--policy", str(pack),
    )  # fmt: skip
    [pending] = report["pending"]
    approval = pending["approval_id"]
    edited = cli_json("edit", approval, *AS["casey"], "--set", "value=1980-04-09")
    assert edited["outcome"] == "awaiting_second_approver"
    masked = cli("show", approval, "--json").stdout
    for dob in ("1980-04-07", "1980-07-04", "1980-04-09"):
        assert dob not in masked, dob
    assert json.loads(masked)["approval"]["request"]["original_args"]["field"] == "birthDate"
    cli_json("approve", approval, *AS["jordan"])
    decided = cli("show", approval, "--json").stdout
    for dob in ("1980-04-07", "1980-07-04", "1980-04-09"):
        assert dob not in decided, dob
    [change] = json.loads(decided)["approval"]["record"]["changes"]
    assert change["field"] == "value" and change["phi"] is True
    revealed = cli_json("show", approval, "--reveal", "--reviewer", "jordan", "--role", ROLE)
    [change] = revealed["approval"]["record"]["changes"]
    assert change["after"] == "1980-04-09"


def test_an_authenticated_principal_is_compared_in_its_normal_form(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1", text="Two coordinators confirm.", decision="hold", role=ROLE,
        two_person=True, when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )  # fmt: skip
    runner = make_runner(policy=pack.model_copy(update={"rules": [rule]}))
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request

    def as_(principal: str, reviewer: str) -> Approve:
        via = Provenance(channel="web", principal=principal, kind="reviewer", authenticated=True)
        return Approve(reviewer=reviewer, role=ROLE, args_hash=request.args_hash, via=via)

    assert runner.decide(request.approval_id, as_("Casey", "casey")).outcome == (
        "awaiting_second_approver"
    )
    with pytest.raises(DecisionRefusedError) as refused:
        runner.decide(request.approval_id, as_("casey ", "jordan"))
    assert refused.value.code == "same_approver"
    assert runner.approval(request.approval_id).approvers == ["casey"]
