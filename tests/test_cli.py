"""The command line, driven in-process with Typer's CliRunner against a real Redis."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from carebound._format import MASK, due, span
from carebound.cli import ExitCode, app
from carebound.cli._review import apply_set, parse_set
from carebound.state.keys import run_key
from tests.servers import free_port

FAX = "555-201-0100"

CASE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "fullUrl": "urn:uuid:0d9a4c52-5f0e-4d7e-9a51-3a0f3f0c0001",
            "resource": {
                "resourceType": "Patient",
                "id": "p1",
                "name": [{"family": "Doe", "given": ["Jane"]}],
                "birthDate": "1980-01-02",
            },
        },
        {
            "fullUrl": "urn:uuid:0d9a4c52-5f0e-4d7e-9a51-3a0f3f0c0002",
            "resource": {
                "resourceType": "Practitioner",
                "id": "dr1",
                "name": [{"family": "Smith"}],
                "telecom": [{"system": "fax", "value": FAX}],
            },
        },
    ],
}

SCENARIO = """
name: {name}
agent: demo
requester: sam
case: case.json
world:
  ehr: case.json
expect:
  status: {status}
"""


def cli(*args: str, code: int = 0) -> Result:
    """Invoke the CLI; check the exit code and that no traceback ever shows."""
    result = CliRunner().invoke(app, list(args))
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert result.exception is None or isinstance(result.exception, SystemExit), both
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{both}"
    return result


def cli_json(*args: str, code: int = 0) -> Any:
    """Invoke with --json: stdout is exactly one JSON document; the store note is on stderr."""
    result = cli(*args, "--json", code=code)
    assert "store:" not in result.stdout
    return json.loads(result.stdout)


def start_demo(case_file: Path, requester: str = "ops") -> dict[str, Any]:
    report: dict[str, Any] = cli_json(
        "run", "--agent", "demo", "--case", str(case_file), "--requester", requester
    )
    return report


def test_reviewer_workflow(env: str, case_file: Path, redis_url: str) -> None:
    result = cli("run", "--agent", "demo", "--case", str(case_file), "--requester", "ops")
    assert "paused" in result.stdout
    assert result.stderr.count("store: Redis at") == 1  # announced once, on stderr only
    assert "store:" not in result.stdout

    report = start_demo(case_file)
    assert report["status"] == "paused"
    [pending] = report["pending"]
    assert pending["tool"] == "send_document_request"
    assert pending["required_role"] == "intake_coordinator"
    assert report["findings"]["missing_documents"] == [
        {"code": "11506-3", "display": "Progress note"}
    ]
    approval, run_id = pending["approval_id"], report["run_id"]

    inbox = cli_json("inbox")["approvals"]
    assert approval in [a["approval_id"] for a in inbox]
    item = next(a for a in inbox if a["approval_id"] == approval)
    assert item["due"].startswith("in ") and item["overdue"] is False
    assert item["summary"] == "demo proposes send_document_request"
    table = cli("inbox", "--role", "intake_coordinator").stdout
    lines = table.splitlines()
    at = next(i for i, line in enumerate(lines) if approval in line)
    for cell in ("in 1d 23h", "low", "intake_coordinator", "demo"):
        assert cell in lines[at]
    assert "send_document_request" in lines[at + 1]  # the summary, on its own line
    assert cli_json("inbox", "--role", "billing")["approvals"] == []

    masked = cli("show", approval).stdout
    assert FAX not in masked and MASK in masked
    assert "11506-3" in masked  # not PHI: shown (issue 11)
    assert "OUT-2" in masked
    assert "A document request the demo agent faxes is confirmed by a coordinator" in masked
    assert "if you approve" in masked and "if you reject" in masked
    shown = cli_json("show", approval)
    assert shown["phi_masked"] is True
    args = shown["approval"]["request"]["args"]
    assert args["to"] == MASK and args["document_code"] == "11506-3"
    actions = [e["action"] for e in cli_json("audit", run_id)["events"]]
    assert "view_phi" not in actions  # a masked view is not a PHI view

    err = cli("show", approval, "--reveal", code=ExitCode.BAD_INPUT).stderr
    assert "--reveal needs --reviewer" in err
    cli("show", approval, "--reveal", "--reviewer", "nobody", code=ExitCode.REFUSED)
    revealed = cli("show", approval, "--reveal", "--reviewer", "casey").stdout
    assert FAX in revealed and MASK not in revealed
    events = cli_json("audit", run_id)["events"]
    views = [e for e in events if e["action"] == "view_phi"]
    assert [v["actor"]["id"] for v in views] == ["casey"]

    decided = cli("approve", approval, "--reviewer", "casey", "--role", "intake_coordinator")
    assert f"run {run_id} is now waiting" in decided.stdout
    assert "approve " + approval in decided.stderr

    status = cli_json("status", run_id)
    assert status["record"]["status"] == "waiting"
    assert status["pending"] is None
    assert [(e["tool"], e["status"]) for e in status["effects"]] == [
        ("send_document_request", "done")
    ]
    human = cli("status", run_id).stdout
    assert "waiting for the progress note" in human and "send_document_request" in human

    runs = cli_json("runs", "--status", "waiting")["runs"]
    assert run_id in [r["run_id"] for r in runs]
    assert run_id in cli("runs").stdout

    verified = cli("audit", run_id, "--verify").stdout
    assert f"audit chain of {run_id} holds" in verified
    trail = cli_json("audit", run_id, "--verify")
    assert trail["verify"]["ok"] is True
    assert {"create", "hold", "view_phi", "decision", "effect"} <= {
        e["action"] for e in trail["events"]
    }

    again = cli(
        "approve",
        approval,
        "--reviewer",
        "jordan",
        "--role",
        "intake_coordinator",
        code=ExitCode.ALREADY_DECIDED,
    )
    assert "already decided by casey" in again.stderr
    assert again.stdout == ""


def test_decision_json_and_edit(env: str, case_file: Path) -> None:
    report = start_demo(case_file)
    approval = report["pending"][0]["approval_id"]
    out = cli_json(
        "edit",
        approval,
        "--reviewer",
        "jordan",
        "--role",
        "intake_coordinator",
        "--set",
        "note=Please fax the note today.",
    )
    assert out["decision"] == "edit" and out["outcome"] == "decided"
    assert out["run"]["status"] in ("waiting", "completed")
    revealed = cli_json("show", approval, "--reveal", "--reviewer", "jordan")
    decision = revealed["approval"]["record"]["decision"]
    assert decision["args"]["note"] == "Please fax the note today."
    assert decision["args"]["to"] == FAX  # the other arguments are kept


def test_refusals(env: str, case_file: Path) -> None:
    report = start_demo(case_file, requester="casey")
    approval, run_id = report["pending"][0]["approval_id"], report["run_id"]
    base = ("--reviewer", "casey", "--role", "intake_coordinator")

    wrong = cli(
        "approve", approval, "--reviewer", "billie", "--role", "billing", code=ExitCode.REFUSED
    )
    assert "needs role 'intake_coordinator'" in wrong.stderr
    not_held = cli(
        "approve",
        approval,
        "--reviewer",
        "billie",
        "--role",
        "intake_coordinator",
        code=ExitCode.REFUSED,
    )
    assert "does not hold role" in not_held.stderr

    own = cli("approve", approval, *base, code=ExitCode.REFUSED)
    assert "started run" in own.stderr and "separation of duties" in own.stderr
    assert own.stderr.count("error:") == 1 and "hint:" in own.stderr

    jordan = ("--reviewer", "jordan", "--role", "intake_coordinator")
    stale = cli(
        "approve", approval, *jordan, "--args-hash", "deadbeefdeadbeef", code=ExitCode.REFUSED
    )
    assert "stale" in stale.stderr

    bad_set = cli("edit", approval, *jordan, "--set", "no-equals-sign", code=ExitCode.BAD_INPUT)
    assert "is not field=value" in bad_set.stderr
    cli("edit", approval, *jordan, "--set", "=x", code=ExitCode.BAD_INPUT)
    cli("edit", approval, *jordan, "--set", "to.x=1", code=ExitCode.BAD_INPUT)
    invalid = cli("edit", approval, *jordan, "--set", "to=[1, 2]", code=ExitCode.REFUSED)
    assert "invalid" in invalid.stderr
    cli("reject", approval, *jordan, code=ExitCode.BAD_INPUT)  # --reason is required
    cli("reject", approval, *jordan, "--reason", "  ", code=ExitCode.BAD_INPUT)
    cli("escalate", approval, *jordan, "--to-role", "astronaut", code=ExitCode.REFUSED)

    # None of the refusals touched the hold: it is still pending, in the inbox.
    assert cli_json("status", run_id)["record"]["status"] == "paused"

    rejected = cli_json("reject", approval, *jordan, "--reason", "wrong office")
    assert rejected["outcome"] == "decided"
    late = cli("approve", approval, *jordan, code=ExitCode.ALREADY_DECIDED)
    assert "already decided by jordan" in late.stderr


def test_escalate_moves_the_hold(env: str, case_file: Path) -> None:
    approval = start_demo(case_file)["pending"][0]["approval_id"]
    out = cli_json(
        "escalate",
        approval,
        "--reviewer",
        "casey",
        "--role",
        "intake_coordinator",
        "--to-role",
        "supervisor",
    )
    assert out["outcome"] == "escalated"
    supervisor = cli_json("inbox", "--role", "supervisor")["approvals"]
    assert [a["approval_id"] for a in supervisor] == [approval]
    assert cli_json("inbox", "--role", "intake_coordinator")["approvals"] == []


def test_unknown_ids_exit_5(env: str) -> None:
    for args in (
        ("status", "rnope"),
        ("audit", "rnope"),
        ("audit", "rnope", "--verify"),
        ("show", "rnope-1"),
        ("approve", "rnope-1", "--reviewer", "casey", "--role", "intake_coordinator"),
    ):
        result = cli(*args, code=ExitCode.NOT_FOUND)
        assert "error: no " in result.stderr and "hint:" in result.stderr


def test_bad_input_exit_2(env: str, tmp_path: Path, case_file: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", ', encoding="utf-8")
    result = cli("run", "--agent", "demo", "--case", str(broken), code=ExitCode.BAD_INPUT)
    assert "broken.json" in result.stderr and "error:" in result.stderr

    not_fhir = tmp_path / "patient.json"
    not_fhir.write_text('{"resourceType": "Bundle", "type": "nonsense"}', encoding="utf-8")
    result = cli("run", "--agent", "demo", "--case", str(not_fhir), code=ExitCode.BAD_INPUT)
    assert "patient.json" in result.stderr

    unknown = cli("run", "--agent", "nope", "--case", str(case_file), code=ExitCode.BAD_INPUT)
    assert "unknown agent 'nope'" in unknown.stderr and "demo" in unknown.stderr
    missing = cli("run", "--agent", "demo", "--case", str(tmp_path / "absent.json"), code=2)
    assert "absent.json" in missing.stderr
    cli("run", code=ExitCode.BAD_INPUT)  # neither a scenario nor --agent
    cli("run", str(tmp_path / "absent.yaml"), code=ExitCode.BAD_INPUT)
    cli("run", "--agent", "demo", code=ExitCode.BAD_INPUT)  # --agent without --case
    pack = cli(
        "run",
        "--agent",
        "demo",
        "--case",
        str(case_file),
        "--policy",
        "no-such-pack",
        code=ExitCode.BAD_INPUT,
    )
    assert "no-such-pack" in pack.stderr
    cli("runs", "--status", "sleeping", code=ExitCode.BAD_INPUT)
    cli("reviewers", "--policy", "no-such-pack", code=ExitCode.BAD_INPUT)
    cli("no-such-command", code=ExitCode.BAD_INPUT)
    cli("inbox", "--limit", "0", code=ExitCode.BAD_INPUT)


def test_unreachable_store_exit_6(monkeypatch: pytest.MonkeyPatch, case_file: Path) -> None:
    monkeypatch.setenv("CAREBOUND_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    for args in (
        ("inbox",),
        ("runs", "--json"),
        ("run", "--agent", "demo", "--case", str(case_file)),
    ):
        result = cli(*args, code=ExitCode.STORE_UNAVAILABLE)
        assert "cannot reach the Redis server" in result.stderr
        assert "CAREBOUND_REDIS_URL" in result.stderr
        if "--json" in args:  # the error as a JSON document (tests/test_cli_json.py)
            assert json.loads(result.stdout)["error"]["exit_code"] == ExitCode.STORE_UNAVAILABLE
        else:
            assert result.stdout == ""


def test_broken_audit_chain_exits_1(env: str, case_file: Path, redis_url: str) -> None:
    run_id = start_demo(case_file)["run_id"]
    client = redis.Redis.from_url(redis_url)
    try:
        stream = run_key(env, run_id, "audit")
        entries = client.xrange(stream) or []
        assert len(entries) >= 3
        entry_id = entries[1][0]
        assert entry_id is not None
        client.xdel(stream, entry_id)  # cut an event out of the trail
    finally:
        client.close()
    result = cli("audit", run_id, "--verify", code=ExitCode.FAILED)
    assert "BROKEN" in result.stdout
    assert cli_json("audit", run_id, "--verify", code=ExitCode.FAILED)["verify"]["ok"] is False
    cli("audit", run_id)  # listing without --verify still works


def test_scenarios_file_and_folder(env: str, tmp_path: Path, case_file: Path) -> None:
    good = tmp_path / "a_good.yaml"
    good.write_text(SCENARIO.format(name="good", status="paused"), encoding="utf-8")
    bad = tmp_path / "b_bad.yaml"
    bad.write_text(SCENARIO.format(name="bad", status="completed"), encoding="utf-8")

    report = cli_json("run", str(good))
    assert report["status"] == "paused" and report["pending"]
    assert "expectations met" in cli("run", str(good)).stdout
    failed = cli("run", str(bad), code=ExitCode.FAILED)
    assert "expected completed, got paused" in failed.stdout

    folder = cli("run", str(tmp_path), code=ExitCode.FAILED)
    assert "a_good.yaml" in folder.stdout and "b_bad.yaml" in folder.stdout
    assert "passed" in folder.stdout and "failed" in folder.stdout
    rows = cli_json("run", str(tmp_path), code=ExitCode.FAILED)["scenarios"]
    assert [(Path(r["scenario"]).name, r["passed"]) for r in rows] == [
        ("a_good.yaml", True),
        ("b_bad.yaml", False),
    ]

    (tmp_path / "c_broken.yaml").write_text("agent: demo\ncase: [unclosed\n", encoding="utf-8")
    rows = cli_json("run", str(tmp_path), code=ExitCode.BAD_INPUT)["scenarios"]
    assert rows[2]["error"] and rows[2]["report"] is None
    cli("run", str(tmp_path / "c_broken.yaml"), code=ExitCode.BAD_INPUT)
    empty = tmp_path / "empty"
    empty.mkdir()
    cli("run", str(empty), code=ExitCode.BAD_INPUT)


def test_worker_server_reviewers_help(env: str, tmp_path: Path) -> None:
    assert cli_json("worker", "--once") == {
        "timers_fired": 0,
        "holds_expired": 0,
        "holds_escalated": 0,
        "runs_recovered": 0,
        "runs_resumed": 0,
        "replies_delivered": 0,
        "runs_failed": 0,
        "runs_quarantined": 0,
        "sweeps": 1,
        "recovered": [],
        "connectors": "simulator",
    }
    assert "timers fired" in cli("worker", "--once").stdout
    assert cli_json("worker", "--sweeps", "2", "--interval", "0")["sweeps"] == 2

    status = cli_json("server", "status")
    assert status["embedded"] is None and status["external_url"] is not None
    assert "not used" in cli("server", "status").stdout
    assert cli_json("server", "stop") == {"stopped": False, "data_dir": str(tmp_path / "home")}

    people = cli_json("reviewers")["reviewers"]
    assert {"id": "casey", "name": "Casey Coordinator", "roles": ["intake_coordinator"]} in people
    assert "billie" in cli("reviewers").stdout

    helptext = cli("--help").stdout
    for line in ("Exit codes", "3  decision refused", "6  store unreachable", "CAREBOUND_PREFIX"):
        assert line in helptext
    assert cli("--version").stdout.startswith("carebound ")


def test_set_parsing() -> None:
    changes = parse_set(["to=5552010100", "count=2", "tags=[1]", 'note="x=y"', "extra.k=true"])
    args = {"to": "555", "count": 1, "tags": [], "note": "", "extra": {"k": False}}
    assert apply_set(args, changes) == {
        "to": "5552010100",  # a text argument stays text
        "count": 2,
        "tags": [1],
        "note": "x=y",
        "extra": {"k": True},
    }
    assert args["count"] == 1  # not changed in place


def test_relative_times() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert due(now + timedelta(hours=23, minutes=59), now) == "in 23h"
    assert due(now - timedelta(hours=2, minutes=5), now) == "overdue 2h 5m"
    assert due(now + timedelta(days=1, hours=23, minutes=59), now) == "in 1d 23h"
    assert span(timedelta(seconds=42)) == "42s"
    assert span(timedelta(minutes=12)) == "12m"


def test_packet_rendering_masks_phi_facts() -> None:
    from datetime import UTC, datetime, timedelta

    from rich.console import Console

    from carebound._phi import PhiPolicy
    from carebound.approvals import (
        ApprovalRequest,
        ApprovalView,
        DecisionPacket,
        PacketCheck,
        PacketFact,
        PinnedVersions,
        SourceRef,
    )
    from carebound.cli._render_packet import packet_view
    from carebound.tools.demo import update_patient_field

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    packet = DecisionPacket(
        summary="Fix the date of birth of Patient/p1",
        facts=[
            PacketFact(
                label="DOB in EHR",
                value="1980-01-02",
                source=SourceRef(resource="Patient/p1", field="birthDate"),
                phi=True,
            ),
            PacketFact(
                label="Documents on file",
                value="3",
                source=SourceRef(resource="DocumentReference/d1", document="referral.pdf p2"),
            ),
        ],
        checks=[
            PacketCheck(name="name matches", passed=True, detail="same name in both"),
            PacketCheck(
                name="date of birth",
                passed=False,
                detail="1 digit apart",
                rule_id="REC-3",
                rule_text="A changed date of birth is confirmed by a person.",
            ),
        ],
        missing=["signed consent"],
        recommendation="approve",
        recommendation_text="a typo in the EHR",
        confidence=0.85,
        on_approve="the EHR date of birth is changed",
        on_reject="nothing changes; the mismatch stays open",
    )
    request = ApprovalRequest(
        approval_id="r1-1",
        run_id="r1",
        agent="reconcile",
        tool="update_patient_field",
        args={"field": "birthDate", "value": "1980-01-20"},
        args_hash="ab" * 32,
        rule_id="REC-3",
        rule_text="A changed date of birth is confirmed by a person.",
        reason="the EHR and the referral disagree",
        packet=packet,
        risk="high",
        required_role="clinical_reviewer",
        deadline=now - timedelta(hours=2),
        pinned=PinnedVersions(
            agent="reconcile",
            agent_version="1",
            policy="default",
            policy_version="1",
            policy_fingerprint="f" * 12,
            tool_schema="s" * 12,
        ),
        requester="ops",
        patient_ref="Patient/p1",
        created_at=now - timedelta(days=1),
    )
    view = ApprovalView(
        request=request,
        status="pending",
        required_role="clinical_reviewer",
        deadline=request.deadline,
    )

    def render(v: ApprovalView, masked: bool) -> str:
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(packet_view(v, now, masked=masked))
        return console.export_text()

    masked = render(PhiPolicy(None).approval(view), True)  # an agent not known here
    assert "1980-01-02" not in masked and "1980-01-20" not in masked
    assert masked.count(MASK) >= 3  # the PHI fact and both argument values
    assert "Documents on file" in masked and "3" in masked  # a fact without PHI stays readable
    assert "DocumentReference/d1 · referral.pdf p2" in masked
    assert "✓ name matches" in masked and "✗ date of birth" in masked
    assert "rule REC-3: A changed date of birth is confirmed by a person." in masked
    assert "signed consent" in masked
    assert "approve (confidence 85%): a typo in the EHR" in masked
    assert "overdue 2h" in masked
    assert "--reveal" in masked

    plain = dataclasses.replace(update_patient_field, phi=frozenset())
    untouched = PhiPolicy({plain.name: plain}).approval(view)
    assert untouched.request.args == request.args  # a tool without PHI keeps its arguments
    revealed = render(view, False)
    assert "1980-01-02" in revealed and "1980-01-20" in revealed and "--reveal" not in revealed
