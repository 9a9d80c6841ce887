"""Naming chat models outside code: ``--model`` on run, worker and serve, and the connectors
file's ``[models]`` table. No provider package is installed here, so what is checked is that a
name is read from each place and that a bad one is a clear error (exit 2, no traceback)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from carebound.assist import ModelConfigError
from carebound.tools.connectors import ConnectorsConfigError
from carebound.tools.connectors.config import load_connectors_config
from tests.conftest import SCENARIOS
from tests.test_cli import cli

EHR = '[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n'


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--agent", "demo", "--case", "{case}"],
        ["run", str(SCENARIOS / "hello_hold.yaml")],
        ["worker", "--once"],
        ["serve", "--port", "9"],
    ],
    ids=["run-case", "run-scenario", "worker", "serve"],
)
@pytest.mark.parametrize(
    ("name", "says"),
    [("gpt-4o", "does not say its provider"), ("nosuchprovider:x", "cannot be loaded")],
)
def test_a_bad_model_option_is_exit_2_without_a_traceback(
    env: str, case_file: Path, command: list[str], name: str, says: str
) -> None:
    if command[0] == "serve":
        pytest.importorskip("uvicorn", reason="carebound serve needs the web extra")
    args = [a.replace("{case}", str(case_file)) for a in command]
    result = cli(*args, "--model", name, code=2)
    assert says in result.stderr and "hint:" in result.stderr


def test_the_connectors_file_names_models(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(
        EHR + '[models]\ndefault = "openai:gpt-4o-mini"\nclassify = "ollama:llama3.1"\n'
        'fallbacks = ["anthropic:claude-haiku"]\ntimeout_s = 12\n'
    )
    models = load_connectors_config(path).models
    assert models is not None
    assert (models.default, models.classify, models.draft) == (
        "openai:gpt-4o-mini", "ollama:llama3.1", None
    )  # fmt: skip
    assert (models.fallbacks, models.timeout_s) == (["anthropic:claude-haiku"], 12)


def test_a_wrong_models_table_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(EHR + "[models]\ntimeout_s = 0\nsummarize = 'x:y'\n")
    with pytest.raises(ConnectorsConfigError) as caught:
        load_connectors_config(path)
    assert "models.timeout_s" in str(caught.value) and "models.summarize" in str(caught.value)


def test_a_runner_loads_the_files_models(make_runner: object, tmp_path: Path) -> None:
    if importlib.util.find_spec("langchain_ollama") is not None:
        pytest.skip("langchain-ollama is installed here: the model would load")
    path = tmp_path / "connectors.toml"
    path.write_text(EHR + '[models]\nclassify = "ollama:llama3.1"\n')
    with pytest.raises(ModelConfigError, match="pip install langchain-ollama"):
        make_runner(connectors=path)  # type: ignore[operator]
