"""The minimum-necessary PHI policy, finding by finding, through the real CLI, web pages and API
on real Redis: masked views hide PHI (also in agent free text and reviewer notes) and show what
is not PHI; a reveal needs the hold's role and is audited in every channel."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carebound._phi import MASK
from tests.conftest import SCENARIOS
from tests.test_phi_canary import (
    _signed_in,
    case_phi,
    cli,
    env_fixture,  # noqa: F401  (the "env" fixture)
    leaks,
    web_app_fixture,  # noqa: F401  (the "web_app" fixture)
)

DOB_SWAP = SCENARIOS / "reconcile_dob_swap.yaml"
DOBS = ("1980-04-07", "1980-07-04")
PHONES = ("919-555-0178", "(919) 555-0178", "+19195550178")


def _run(scenario: Any) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli("run", str(scenario), "--json"))
    return report


def _events(runner: Any, run_id: str, action: str) -> list[Any]:
    return [e for e in runner.audit(run_id) if e.action == action]


def _free(text: str, *values: str) -> bool:
    return not any(v in text for v in values)


# -- CLI ------------------------------------------------------------------------------------------


def test_show_masks_the_dobs_in_reason_and_checks_and_shows_non_phi_args(env: str) -> None:
    report = _run(DOB_SWAP)
    approval_id = report["pending"][0]["approval_id"]
    assert _free(report["pending"][0]["reason"], *DOBS)
    assert "birth date" in report["pending"][0]["reason"]
    text = cli("show", approval_id)
    assert _free(text, *DOBS), text
    assert "day and month swapped" in text  # the fact, named
    shown = json.loads(cli("show", approval_id, "--json"))
    assert shown["phi_masked"] is True
    request = shown["approval"]["request"]
    assert _free(json.dumps(shown), *DOBS)
    # non-PHI arguments are shown, the value being written is not
    assert request["args"]["field"] == "birthDate"
    assert request["args"]["patient_id"] == "ehr-osei"
    assert request["args"]["value"] == MASK
    checks = request["packet"]["checks"]
    assert any("birth date" in c["detail"] for c in checks)


def test_run_and_status_mask_mismatch_values(env: str) -> None:
    report = _run(DOB_SWAP)
    mismatches = report["findings"]["mismatches"]
    assert {m["field"] for m in mismatches} == {"birthDate", "telecom.phone"}
    assert all(set(m["values"].values()) == {MASK} for m in mismatches)
    assert _free(cli("run", str(DOB_SWAP)), *DOBS, *PHONES)
    run_id = report["run_id"]
    text = cli("status", run_id)
    assert "birthDate" in text and _free(text, *DOBS, *PHONES), text
    status = json.loads(cli("status", run_id, "--json"))
    assert _free(json.dumps(status), *DOBS, *PHONES)
    raw = status["findings"]["mismatches"]
    assert all(m["values"]["referral"] == MASK and m["proposed"] in (MASK, None) for m in raw)


def test_audit_masks_fix_values_and_reviewer_text(env: str) -> None:
    report = _run(SCENARIOS / "reconcile_dob_swap_rejected.yaml")
    audit = json.loads(cli("audit", report["run_id"], "--json"))
    effects = [e for e in audit["events"] if e["detail"].get("field") == "telecom.phone"]
    assert effects and all(e["detail"].get("after") in (MASK, None) for e in effects)
    decisions = [e for e in audit["events"] if e["action"] == "decision"]
    assert decisions and decisions[0]["detail"]["reason"] == MASK  # it quoted a DOB
    assert decisions[0]["detail"]["decision"] == "reject"
    assert _free(cli("audit", report["run_id"]), *DOBS, *PHONES)


def test_decision_json_masks_the_run_report(env: str) -> None:
    report = _run(DOB_SWAP)
    approval_id = report["pending"][0]["approval_id"]
    decided = json.loads(
        cli(
            "reject",
            approval_id,
            "--reviewer",
            "casey",
            "--role",
            "intake_coordinator",
            "--reason",
            "Patient confirmed 1980-07-04 by phone",
            "--json",
        )
    )
    mismatches = decided["run"]["findings"]["mismatches"]
    assert mismatches and all(set(m["values"].values()) == {MASK} for m in mismatches)
    assert _free(json.dumps(decided), *DOBS, *PHONES)
    shown = json.loads(cli("show", approval_id, "--json"))
    assert shown["approval"]["record"]["decision"]["reason"] == MASK
    assert _free(cli("status", decided["run"]["run_id"]), *DOBS, *PHONES)


def test_billing_holds_keep_their_reasons_visible(env: str) -> None:
    """No PHI tool, nothing to mask: a billing reviewer's reason stays readable."""
    report = _run(SCENARIOS / "billing_over_billing_rejected.yaml")
    audit = json.loads(cli("audit", report["run_id"], "--json"))
    decision = next(e for e in audit["events"] if e["action"] == "decision")
    assert decision["detail"]["reason"].startswith("Price not agreed")


def test_cli_reveal_needs_the_holds_role(env: str, web_app: Any) -> None:
    runner = web_app[0]
    report = _run(DOB_SWAP)
    approval_id, run_id = report["pending"][0]["approval_id"], report["run_id"]
    from carebound.cli import app

    refused = CliRunner().invoke(app, ["show", approval_id, "--reveal", "--reviewer", "billie"])
    assert refused.exit_code == 3, refused.output
    assert "intake_coordinator" in refused.output and "Traceback" not in refused.output
    assert _events(runner, run_id, "view_phi") == []
    shown = CliRunner().invoke(app, ["show", approval_id, "--reveal", "--reviewer", "casey"])
    assert shown.exit_code == 0, shown.output
    assert "1980-04-07" in shown.stdout  # the proposed value, revealed
    (view,) = _events(runner, run_id, "view_phi")
    assert view.actor.id == "casey" and view.actor.role == "intake_coordinator"
    assert view.detail["approval_id"] == approval_id and view.detail["channel"] == "cli"


def test_cli_status_and_audit_reveal_need_a_role_of_the_run(env: str, web_app: Any) -> None:
    runner = web_app[0]
    run_id = _run(DOB_SWAP)["run_id"]
    from carebound.cli import app

    for command in ("status", "audit"):
        refused = CliRunner().invoke(app, [command, run_id, "--reveal", "--reviewer", "billie"])
        assert refused.exit_code == 3, refused.output
        assert "intake_coordinator" in refused.output and "Traceback" not in refused.output
    assert _events(runner, run_id, "view_phi") == []
    status = json.loads(cli("status", run_id, "--reveal", "--reviewer", "casey", "--json"))
    assert "1980-04-07" in json.dumps(status["report"]["findings"])
    audit = json.loads(cli("audit", run_id, "--reveal", "--reviewer", "casey", "--json"))
    assert "+19195550178" in json.dumps(audit["events"])  # the phone fix, after
    views = _events(runner, run_id, "view_phi")
    assert [(v.actor.id, v.detail["view"], v.detail["channel"]) for v in views] == [
        ("casey", "run", "cli"),
        ("casey", "audit", "cli"),
    ]


# -- web pages ------------------------------------------------------------------------------------


def test_web_pages_mask_agent_text_and_fix_values(env: str, web_app: Any) -> None:
    runner = web_app[0]
    report = _run(DOB_SWAP)
    approval_id, run_id = report["pending"][0]["approval_id"], report["run_id"]
    casey = _signed_in(web_app, "casey")
    packet = casey.get(f"/approvals/{approval_id}").text
    assert _free(packet, *DOBS, *PHONES), "DOBs in the agent's reason or checks"
    assert "birthDate" in packet and "ehr-osei" in packet  # non-PHI arguments shown
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/audit"):
        page = casey.get(path).text
        assert _free(page, *DOBS, *PHONES), f"{path} shows PHI"
        assert "telecom.phone" in page
    csrf = casey.get(f"/approvals/{approval_id}").text.split('name="csrf_token" value="')[1]
    revealed = casey.post(
        f"/approvals/{approval_id}/reveal", data={"csrf_token": csrf.split('"')[0]}
    )
    assert revealed.status_code == 200 and "1980-04-07" in revealed.text
    (view,) = _events(runner, run_id, "view_phi")
    assert view.actor.id == "casey" and view.detail["approval_id"] == approval_id


def test_web_run_and_audit_pages_reveal_for_a_role_of_the_run(env: str, web_app: Any) -> None:
    runner = web_app[0]
    run_id = _run(DOB_SWAP)["run_id"]
    billie = _signed_in(web_app, "billie")
    assert billie.get(f"/runs/{run_id}").status_code == 404  # not her run, not her role
    casey = _signed_in(web_app, "casey")
    page = casey.get(f"/runs/{run_id}").text
    assert 'id="reveal"' in page and _free(page, *DOBS, *PHONES)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert casey.post(f"/runs/{run_id}/reveal", data={}).status_code == 403  # no CSRF token
    assert _events(runner, run_id, "view_phi") == []
    run = casey.post(f"/runs/{run_id}/reveal", data={"csrf_token": csrf})
    assert run.status_code == 200 and "1980-04-07" in run.text and "PHI shown" in run.text
    audit = casey.post(f"/runs/{run_id}/audit/reveal", data={"csrf_token": csrf})
    assert audit.status_code == 200 and "+19195550178" in audit.text
    views = _events(runner, run_id, "view_phi")
    assert [(v.actor.id, v.detail["view"], v.detail["channel"]) for v in views] == [
        ("casey", "run", "web"),
        ("casey", "audit", "web"),
    ]


# -- JSON API -------------------------------------------------------------------------------------


def _api(web: Any, name: str, roles: list[str], scopes: list[str]) -> TestClient:
    _, users, app = web
    token = users.create_token(name, roles, scopes=scopes)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_api_reads_are_masked_and_reveal_needs_scope_role_and_is_audited(
    env: str, web_app: Any
) -> None:
    runner = web_app[0]
    report = _run(DOB_SWAP)
    approval_id, run_id = report["pending"][0]["approval_id"], report["run_id"]
    reader = _api(web_app, "reader", [], ["read"])
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/audit"):
        answer = reader.get(path)
        assert answer.status_code == 200 and answer.json()["phi_masked"] is True
        assert _free(answer.text, *DOBS, *PHONES), f"{path} returns PHI to a role-less token"
        refused = reader.get(path, params={"reveal": "true"})
        assert refused.status_code == 403, refused.text  # no reveal scope
    billing = _api(web_app, "billing-svc", ["billing"], ["read", "reveal"])
    wrong = billing.get(f"/api/runs/{run_id}", params={"reveal": "true"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_role"
    assert _events(runner, run_id, "view_phi") == []
    intake = _api(web_app, "intake-svc", ["intake_coordinator"], ["read", "reveal"])
    masked = intake.get(f"/api/approvals/{approval_id}")
    assert masked.status_code == 200 and _free(masked.text, *DOBS)
    assert masked.json()["approval"]["request"]["args"]["field"] == "birthDate"
    run = intake.get(f"/api/runs/{run_id}", params={"reveal": "true"})
    assert run.status_code == 200 and run.json()["phi_masked"] is False
    assert "1980-04-07" in run.text
    audit = intake.get(f"/api/runs/{run_id}/audit", params={"reveal": "true"})
    assert audit.status_code == 200 and "+19195550178" in audit.text
    views = _events(runner, run_id, "view_phi")
    assert [v.detail["view"] for v in views] == ["run", "audit"]
    assert all(v.detail["channel"] == "api" and v.detail["token"] == "intake-svc" for v in views)


def test_library_reveal_needs_the_holds_role(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """Runner.reveal (and AsyncRunner.reveal) checks the viewer, as every channel does."""
    import asyncio

    from carebound import AsyncRunner, DecisionRefusedError

    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    approval_id = view.pending.request.approval_id
    with pytest.raises(DecisionRefusedError, match="intake_coordinator"):
        asyncio.run(AsyncRunner(runner).reveal(approval_id, viewer="billie"))
    with pytest.raises(DecisionRefusedError, match="not in the reviewer directory"):
        runner.reveal(approval_id, viewer="mallory")
    assert _events(runner, view.run_id, "view_phi") == []
    shown = asyncio.run(AsyncRunner(runner).reveal(approval_id, viewer="Casey"))
    assert shown.request.args["to"] == "555-010-2000"
    (seen,) = _events(runner, view.run_id, "view_phi")
    assert (seen.actor.id, seen.actor.role) == ("casey", "intake_coordinator")  # one spelling


# -- agent free text ------------------------------------------------------------------------------


def test_every_mismatch_kind_is_worded_without_its_values() -> None:
    from carebound.agents.reconciler._wording import KIND_WORDING, describe
    from carebound.domain.identity import MismatchKind

    values = {"referral": "Kwame Osei 1980-04-07", "ehr": "Kwame Osei 1980-07-04"}
    for kind in typing.get_args(MismatchKind):
        assert kind in KIND_WORDING, f"no PHI-free wording for mismatch kind {kind!r}"
        said = describe("birthDate", kind, values)
        assert leaks(said, {"Kwame", "Osei", *DOBS}) == [], said


@pytest.mark.parametrize("scenario", ["reconcile_low_risk", "reconcile_synthea_variant"])
def test_findings_explanations_name_facts_not_values(env: str, scenario: str) -> None:
    path = SCENARIOS / f"{scenario}.yaml"
    report = _run(path)
    status = json.loads(cli("status", report["run_id"], "--json"))
    explanations = [m["explanation"] for m in status["findings"]["mismatches"]]
    assert explanations
    assert all(leaks(text, case_phi(path)) == [] for text in explanations), explanations
