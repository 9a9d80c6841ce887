"""Payer facts (issue 13) through the real Runner on Redis: "no payer connected" is not "the payer
has no such member", and the payer's own demographics are compared with the referral and the EHR
under the EHR's rules."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carebound import Approve, Runner, RunView, VirtualClock, run_report
from carebound._agent import request_match
from carebound.agents.reconciler import RECONCILER
from carebound.cli import app
from carebound.tools.connectors import ReplyScript, ScriptedDocument, WorldSpec
from carebound.tools.connectors.simulated import World
from tests.conftest import SCENARIOS

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(rel: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / rel).read_text()))


def resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def reconcile(make_runner: Any, payer: dict[str, Any] | None) -> tuple[Runner, RunView]:
    runner: Runner = make_runner(agents={"reconciler": RECONCILER})
    case = load("cases/reconcile_low_risk.json")
    world = WorldSpec.from_bundles(load("ehr/reconcile_low_risk.json"), payer)
    return runner, runner.start("reconciler", case, requester="sam", world=world)


def by_field(view: RunView) -> dict[str, dict[str, Any]]:
    return {m["field"]: m for m in view.findings.get("mismatches", [])}


def test_no_payer_connected_is_not_a_member_id_mismatch(make_runner: Any) -> None:
    _, view = reconcile(make_runner, None)
    assert view.status == "completed", view.record.summary
    found = by_field(view)
    assert "identifier.member_id" not in found, found.get("identifier.member_id")
    assert view.findings["reconcile"]["payer"] == "not_connected"
    assert "coverage not verified with the payer" in view.record.summary
    # The low-risk fixes still happen: not asking the payer blocks nothing.
    assert {f for f, m in found.items() if m["action"] == "auto_fixed"} == {
        "name.given",
        "address",
        "address.postalCode",
        "telecom.phone",
    }


def test_a_payer_that_answers_without_the_member_is_a_held_finding(make_runner: Any) -> None:
    payer = copy.deepcopy(load("payer/reconcile_alvarez.json"))
    resource(payer, "Coverage")["subscriberId"] = "ACM999999999"
    _, view = reconcile(make_runner, payer)
    assert view.findings["reconcile"]["payer"] == "no_member"
    member = by_field(view)["identifier.member_id"]
    assert (member["risk"], member["action"], member["kind"]) == (
        "high",
        "held",
        "coverage_not_found",
    )
    assert member["values"]["payer"] is None


def test_the_payer_confirming_the_member_adds_no_finding(make_runner: Any) -> None:
    _, view = reconcile(make_runner, load("payer/reconcile_alvarez.json"))
    assert view.findings["reconcile"]["payer"] == "confirmed"
    assert "identifier.member_id" not in by_field(view)
    assert "birthDate" not in by_field(view)


def test_a_payer_birth_date_that_differs_is_held_and_not_written(make_runner: Any) -> None:
    payer = copy.deepcopy(load("payer/reconcile_alvarez.json"))
    resource(payer, "Patient")["birthDate"] = "1972-06-16"
    runner, view = reconcile(make_runner, payer)
    dob = by_field(view)["birthDate"]
    assert (dob["risk"], dob["action"]) == ("high", "held")
    assert set(dob["values"]) >= {"payer"}
    assert dob["values"]["payer"] == "1972-06-16"
    # Nothing the agent may write settles the payer's record: reported, and no EHR write of it.
    world = World.attach(runner.client, view.run_id, prefix=runner.prefix)
    assert world.ehr.read("Patient", "ehr-alvarez")["birthDate"] == "1972-06-15"
    assert "birthDate" not in json.dumps([e.payload for e in world.ehr.effects()])
    report = run_report(view)
    assert any(m.field == "birthDate" and m.risk == "high" for m in report.findings.mismatches)


def test_payer_name_and_sex_are_compared_too(make_runner: Any) -> None:
    payer = copy.deepcopy(load("payer/reconcile_alvarez.json"))
    patient = resource(payer, "Patient")
    patient["gender"] = "male"
    patient["name"] = [{"use": "official", "family": "Alvarado", "given": ["Margarita"]}]
    _, view = reconcile(make_runner, payer)
    found = by_field(view)
    assert (found["gender"]["risk"], found["gender"]["action"]) == ("high", "held")
    assert (found["name.family"]["risk"], found["name.family"]["action"]) == ("high", "held")


# --- the packet ------------------------------------------------------------------------------


def intake_packet(make_runner: Any, payer: dict[str, Any] | None) -> Any:
    """Run intake on the Delgado referral (the office replies with the note) to its REF-1 hold."""
    note = ScriptedDocument(
        code="11506-3",
        display="Progress note",
        text="Progress note. Chief complaint: chest pressure. Assessment and plan: angina.",
        date=datetime(2026, 2, 20, tzinfo=UTC).date(),
    )
    replies = [ReplyScript(to="555-010-3000", after=timedelta(hours=4), documents=[note])]
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    world = WorldSpec.from_bundles(load("ehr/intake_delgado.json"), payer, replies)
    case = load("cases/intake_delgado.json")
    view = runner.start("referral_intake", case, requester="sam", world=world)
    attached = World.attach(runner.client, view.run_id, prefix=runner.prefix)
    for _ in range(10):
        if view.status == "paused" and view.pending is not None:
            if view.pending.request.tool == "set_referral_status":
                return view.pending.request.packet, view
            request = view.pending.request
            decision = Approve(
                reviewer="casey", role="intake_coordinator", args_hash=request.args_hash
            )
            view = runner.decide(request.approval_id, decision).run
            continue
        due = attached.outreach.next_due()
        assert due is not None, view.record.summary
        clock = runner.clock
        assert isinstance(clock, VirtualClock)
        clock.advance_to(due)
        for inbound in attached.outreach.due_replies(clock.now()):
            assert inbound.request_id
            runner.deliver(
                request_match(inbound.request_id),
                inbound.model_dump(mode="json"),
                event_id=inbound.inbound_id,
            )
        view = runner.get(view.run_id)
    raise AssertionError(f"no REF-1 hold: {view.status} {view.record.summary}")


def test_without_a_payer_the_packet_says_not_verified_and_still_recommends(
    make_runner: Any,
) -> None:
    packet, _ = intake_packet(make_runner, None)
    [check] = [c for c in packet.checks if c.rule_id == "ACC-PAYER"]
    assert check.passed is None
    assert "coverage not verified with the payer" in check.detail
    assert check.rule_text
    assert packet.recommendation == "approve"


def test_the_packet_shows_the_payer_verified_coverage(make_runner: Any) -> None:
    packet, _ = intake_packet(make_runner, load("payer/intake_delgado.json"))
    [check] = [c for c in packet.checks if c.rule_id == "ACC-PAYER"]
    assert check.passed is True
    assert packet.recommendation == "approve"


def test_a_payer_birth_date_difference_blocks_the_acceptance_recommendation(
    make_runner: Any,
) -> None:
    payer = copy.deepcopy(load("payer/intake_delgado.json"))
    resource(payer, "Patient")["birthDate"] = "1958-07-15"
    packet, _ = intake_packet(make_runner, payer)
    assert packet.recommendation == "reject"
    [records] = [c for c in packet.checks if c.rule_id == "ACC-RECORDS"]
    assert records.passed is False
    assert "birthDate" in records.detail
    assert "1958-07-15" not in records.detail


def test_a_payer_without_the_member_fails_the_payer_check(make_runner: Any) -> None:
    payer = copy.deepcopy(load("payer/intake_delgado.json"))
    resource(payer, "Coverage")["subscriberId"] = "ACM000000000"
    resource(payer, "Patient")["identifier"] = []
    packet, _ = intake_packet(make_runner, payer)
    [check] = [c for c in packet.checks if c.rule_id == "ACC-PAYER"]
    assert check.passed is False
    assert packet.recommendation == "reject"


def test_the_cli_shows_an_unverified_check_as_neither_passed_nor_failed(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "140")
    case = str(SCENARIOS / "cases" / "packet_complete.json")
    started = CliRunner().invoke(
        app,
        ["run", "--agent", "packet_builder", "--case", case, "--requester", "sam", "--json"],
    )
    assert started.exit_code == 0, started.stdout + started.stderr
    [pending] = json.loads(started.stdout)["pending"]
    shown = CliRunner().invoke(app, ["show", pending["approval_id"]])
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    [line] = [x for x in shown.stdout.splitlines() if "payer verification" in x]
    assert "?" in line and "✓" not in line and "✗" not in line
    assert "coverage not verified with the payer" in line


def test_the_web_packet_shows_an_unverified_check_as_neither_passed_nor_failed(
    make_runner: Any, redis_client: Any, key_prefix: str
) -> None:
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from carebound import load_policy_pack
    from carebound.web import UserStore, WebSettings, create_app
    from tests.test_web import sign_in

    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = load("cases/packet_complete.json")
    view = runner.start(
        "packet_builder", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    assert view.pending is not None
    users = UserStore(
        redis_client,
        load_policy_pack("default"),
        prefix=key_prefix,
        hasher=PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),
    )
    users.set_password("casey", "correct horse battery staple")
    app = create_app(runner, users=users, settings=WebSettings())
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    sign_in(client, "casey", "correct horse battery staple")
    page = client.get(f"/approvals/{view.pending.request.approval_id}")
    assert page.status_code == 200, page.text
    [item] = [
        li for li in page.text.split("<li")[1:] if "payer verification" in li.split("</li>")[0]
    ]
    assert 'class="unverified"' in item
    assert '<span class="mark">?</span>' in item
    assert "coverage not verified with the payer" in item
