"""`carebound worker` says which systems it reaches, and a connectors file holding only
``[models]`` still names the models when runs use the simulator."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from carebound.assist import ModelConfigError
from tests.test_cli import cli, cli_json

EHR = '[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n'


def test_the_worker_says_which_connectors_it_drives_runs_with(env: str, tmp_path: Path) -> None:
    assert cli_json("worker", "--once")["connectors"] == "simulator"
    assert "connectors simulator" in cli("worker", "--once").stderr

    path = tmp_path / "connectors.toml"
    path.write_text(EHR)
    identity = cli_json("worker", "--once", "--connectors", str(path))["connectors"]
    assert re.fullmatch(r"config:[0-9a-f]{12}", identity)
    # the same identity 'carebound approve' and 'carebound status' show for the runs it drives
    assert f"connectors {identity}" in cli("worker", "--once", "--connectors", str(path)).stderr


def _models_only(tmp_path: Path) -> Path:
    if importlib.util.find_spec("langchain_ollama") is not None:
        pytest.skip("langchain-ollama is installed here: the model would load")
    path = tmp_path / "models.toml"
    path.write_text('[models]\nclassify = "ollama:llama3.1"\n')
    return path


def test_a_runner_on_a_models_only_file_loads_its_models(make_runner: Any, tmp_path: Path) -> None:
    """The file names no system, so runs use the simulator; its models still apply (here: one
    that cannot load, which says so instead of being ignored)."""
    path = _models_only(tmp_path)
    with pytest.raises(ModelConfigError, match="pip install langchain-ollama"):
        make_runner(connectors=path)


def test_the_worker_on_a_models_only_file_loads_its_models(env: str, tmp_path: Path) -> None:
    path = _models_only(tmp_path)
    result = cli("worker", "--once", "--connectors", str(path), code=2)
    assert "langchain-ollama" in result.stderr and "hint:" in result.stderr
