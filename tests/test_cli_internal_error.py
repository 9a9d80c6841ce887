"""An unexpected error (a bug) ends a command with exit 70 and names its type, never its
message: a message may quote the data the code failed on, such as a patient's name."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from carebound.cli import _run, app

PHI = "Rosa Delgado, born 1961-04-02"


def _fail(_model: object) -> None:
    raise RuntimeError(f"could not parse {PHI}")


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unexpected_error_shows_its_type_and_not_its_message(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    monkeypatch.setattr(_run, "use_model", _fail)
    args = ["run", "--agent", "demo", "--case", "case.json", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 70
    both = result.stdout + result.stderr
    assert "RuntimeError" in result.stderr and "CAREBOUND_DEBUG=1" in result.stderr
    assert "Rosa" not in both and "1961" not in both
    assert "Traceback" not in both
    if as_json:
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "internal" and error["exit_code"] == 70


def test_the_traceback_with_the_message_is_for_whoever_asks_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREBOUND_DEBUG", "1")
    monkeypatch.setattr(_run, "use_model", _fail)
    result = CliRunner().invoke(app, ["run", "--agent", "demo", "--case", "case.json"])
    assert result.exit_code == 70
    assert "Traceback" in result.stderr and PHI in result.stderr
