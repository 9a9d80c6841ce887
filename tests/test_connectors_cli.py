"""``--connectors FILE`` on ``run``, ``serve`` and ``worker`` (and ``CAREBOUND_CONNECTORS``): a bad
file is exit code 2 with file, path and problem and no traceback; a good one is what runs use."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from carebound.state.breaker import BreakerStore
from carebound.tools.connectors import RunContext
from carebound.tools.connectors.config import EhrConfig, OfficeConfig
from tests.conftest import SCENARIOS
from tests.memory_connectors import MemoryEHR, MemoryOutreach
from tests.test_cli import cli

BAD = '[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\nretry = { attempts = 0 }\n'
GOOD = '[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n[office.fax]\nprovider = "simulated"\n'


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad-connectors.toml"
    path.write_text(BAD)
    return path


def _refused(result: Any, path: Path) -> None:
    assert f"error: {path}: invalid connectors configuration" in result.stderr
    assert "ehr.retry.attempts: Input should be greater than or equal to 1" in result.stderr
    assert "hint:" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--agent", "demo", "--case", "{case}"],
        ["run", str(SCENARIOS / "hello_hold.yaml")],
        ["run", str(SCENARIOS)],
        ["worker", "--once"],
        ["serve", "--port", "9"],
    ],
    ids=["run-case", "run-scenario", "run-folder", "worker", "serve"],
)
def test_a_bad_connectors_file_is_exit_2_without_a_traceback(
    env: str, case_file: Path, bad_file: Path, command: list[str]
) -> None:
    if command[0] == "serve":
        pytest.importorskip("uvicorn", reason="carebound serve needs the web extra")
    args = [a.replace("{case}", str(case_file)) for a in command]
    _refused(cli(*args, "--connectors", str(bad_file), code=2), bad_file)


def test_the_environment_variable_names_the_file_too(
    env: str, bad_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBOUND_CONNECTORS", str(bad_file))
    _refused(cli("worker", "--once", code=2), bad_file)


def test_a_missing_connectors_file_is_exit_2(env: str, case_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = cli("run", "--agent", "demo", "--case", str(case_file), "--connectors", str(missing), code=2)  # fmt: skip # noqa: E501
    assert f"{missing}: cannot read the connectors file" in result.stderr


def test_a_case_run_uses_the_systems_the_file_names(
    env: str, case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = json.loads(case_file.read_text())
    ehr = MemoryEHR([e["resource"] for e in case["entry"]])
    outreach = MemoryOutreach()
    built: list[str] = []

    def build_ehr(config: EhrConfig, *, breakers: BreakerStore, clock: Any) -> MemoryEHR:
        built.append(f"ehr {config.base_url}")
        return ehr

    def build_outreach(config: OfficeConfig, run: RunContext, *, clock: Any) -> MemoryOutreach:
        built.append(f"office fax={config.fax is not None}")
        return outreach

    rest = ModuleType("carebound.tools.connectors.fhir_rest")
    rest.build_ehr = build_ehr  # type: ignore[attr-defined]
    channels = ModuleType("carebound.tools.connectors.outreach_channels")
    channels.build_outreach = build_outreach  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, rest.__name__, rest)
    monkeypatch.setitem(sys.modules, channels.__name__, channels)
    file = tmp_path / "connectors.toml"
    file.write_text(GOOD)

    result = cli("run", "--agent", "demo", "--case", str(case_file), "--connectors", str(file), "--json")  # fmt: skip # noqa: E501
    report = json.loads(result.stdout)
    assert report["status"] == "paused"
    assert built == ["ehr http://127.0.0.1:9/ehr", "office fax=True"]
    # The case was not seeded anywhere: the run read the EHR the file names.
    assert ehr.writes == {}

    refused = cli("run", "--agent", "demo", "--case", str(case_file), "--ehr", str(case_file), "--connectors", str(file), code=2)  # fmt: skip # noqa: E501
    assert "--ehr seeds the simulated EHR" in refused.stderr
