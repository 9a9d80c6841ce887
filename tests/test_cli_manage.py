"""Run management on the command line (issue 17): search runs, cancel with a reason, purge
ended runs after archiving their audit chains, verify the archive; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import cli, cli_json, start_demo


def test_runs_search_by_requester_and_patient_with_paging(env: str, case_file: Path) -> None:
    first = start_demo(case_file, requester="ops")["run_id"]
    second = start_demo(case_file, requester="alex")["run_id"]
    mine = cli_json("runs", "--requester", "Alex")["runs"]
    assert [r["run_id"] for r in mine] == [second]
    on_patient = cli_json("runs", "--patient", "Patient/p1")["runs"]
    assert {r["run_id"] for r in on_patient} == {first, second}
    assert all(r["patient_ref"] == "Patient/p1" for r in on_patient)
    assert cli_json("runs", "--patient", "Patient/nobody")["runs"] == []
    page = cli_json("runs", "--limit", "1")
    assert len(page["runs"]) == 1 and page["next_offset"] == 1
    rest = cli_json("runs", "--limit", "1", "--offset", "1")
    assert len(rest["runs"]) == 1 and rest["next_offset"] is None
    assert cli_json("runs", "--since", "2000-01-01", "--until", "2000-01-02")["runs"] == []


def test_runs_search_refuses_bad_dates_and_references(env: str) -> None:
    bad_day = cli("runs", "--since", "yesterday", code=2)
    assert "--since 'yesterday' is not a date" in bad_day.stderr
    assert "YYYY-MM-DD" in bad_day.stderr
    bad_ref = cli("runs", "--patient", "p1", code=2)
    assert "Patient/ID" in bad_ref.stderr


def test_cancel_then_purge_with_an_archive_then_verify_it(
    env: str, case_file: Path, tmp_path: Path
) -> None:
    run_id = start_demo(case_file)["run_id"]
    assert cli("cancel", run_id, "--by", "ops", code=2).exit_code == 2  # --reason is required
    done = cli_json("cancel", run_id, "--reason", "test run", "--by", "ops")
    assert done["status"] == "cancelled"
    again = cli("cancel", run_id, "--reason", "twice", "--by", "ops", code=3)
    assert "already ended" in again.stderr
    assert cli("cancel", "r-nope", "--reason", "x", "--by", "ops", code=5).exit_code == 5
    both = cli("purge", "--older-than", "1", "--archive", "x.jsonl", "--no-archive", code=2)
    assert "contradict" in both.stderr
    # a period past any date is bad input (exit 2), not an internal error (exit 70)
    too_long = cli("purge", "--older-than", "99999999", "--dry-run", code=2)
    assert "--older-than" in too_long.stderr and "36500" in too_long.stderr
    # ended just now: nothing is older than a day
    assert cli_json("purge", "--older-than", "1", "--dry-run")["purged"] == []
    archive = tmp_path / "archive.jsonl"
    report = cli_json("purge", "--older-than", "1", "--archive", str(archive))
    assert report["purged"] == []
    assert not archive.exists()
    status = cli_json("status", run_id)
    assert status["record"]["status"] == "cancelled"


def test_verify_archive_reports_an_edited_archive(
    env: str, case_file: Path, tmp_path: Path, redis_url: str
) -> None:
    import redis

    from carebound import Runner
    from carebound.audit import archive_chains

    run_id = start_demo(case_file)["run_id"]
    cli_json("cancel", run_id, "--reason", "test run", "--by", "ops")
    runner = Runner(redis.Redis.from_url(redis_url), prefix=env)
    archive = tmp_path / "archive.jsonl"
    assert archive_chains(runner.audit_log, [run_id], archive, now=runner.clock.now()).written
    ok = cli_json("verify-archive", str(archive))
    assert ok["ok"] and ok["runs"][run_id]["ok"]
    line = json.loads(archive.read_text())
    line["archived_at"] = "2000-01-01T00:00:00Z"
    archive.write_text(json.dumps(line) + "\n")
    broken = cli_json("verify-archive", str(archive), code=1)
    assert not broken["ok"]
    missing = cli("verify-archive", str(tmp_path / "missing.jsonl"), code=2)
    # the hint names the command that writes archives (it said 'runs purge', no such command)
    assert "carebound purge --archive" in missing.stderr


def test_purge_archives_to_the_servers_archive_unless_told_otherwise(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'carebound purge' refused to run without --archive/--no-archive while the API and the
    # web archive to CAREBOUND_ARCHIVE: cron's purge and the API's now share one archive (and
    # its lock), so the two at once leave an archive that verifies
    home_default = cli_json("purge", "--older-than", "1", "--dry-run")
    assert home_default["archive"] == str((tmp_path / "home" / "purged-runs.jsonl").resolve())
    chosen = tmp_path / "srv" / "archive.jsonl"
    monkeypatch.setenv("CAREBOUND_ARCHIVE", str(chosen))
    assert cli_json("purge", "--older-than", "1", "--dry-run")["archive"] == str(chosen)
    report = cli_json("purge", "--older-than", "1")
    assert report["archive"] == str(chosen) and report["purged"] == []
    assert cli_json("purge", "--older-than", "1", "--no-archive")["archive"] is None
