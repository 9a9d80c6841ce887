"""Edits: tool argument models refuse unknown fields, a refused edit names the field and the
fields that exist, and reviewers see what an edit changed (CLI output and the decision record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner, Result

from carebound.agents import registry
from carebound.cli import ExitCode, app
from carebound.tools import ToolContext, ToolDefinitionError, tool
from tests.test_cli import CASE, FAX


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path) -> str:
    """The CLI on the test Redis, under the test's own key prefix, 120 columns wide."""
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "120")
    return key_prefix


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(CASE), encoding="utf-8")
    return path


def cli(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    both = result.stdout + result.stderr
    assert "Traceback" not in both
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{both}"
    return result


def _models(schema: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and every model nested in its fields."""
    found: list[type[BaseModel]] = [schema]
    for field in schema.model_fields.values():
        stack: list[Any] = [field.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel) and ann not in found:
                found.extend(m for m in _models(ann) if m not in found)
            stack.extend(getattr(ann, "__args__", ()))
    return found


def test_every_shipped_tool_refuses_unknown_arguments() -> None:
    specs = {spec.name: spec for agent in registry().values() for spec in agent.tools.values()}
    assert len(specs) >= 15
    for name, spec in specs.items():
        for model in _models(spec.args_schema):
            assert model.model_config.get("extra") == "forbid", f"{name}: {model.__name__}"
        with pytest.raises(ValidationError) as caught:
            spec.validate({"nonsense": 1})
        assert any(e["type"] == "extra_forbidden" for e in caught.value.errors()), name


class LooseArgs(BaseModel):
    """Arguments that (wrongly) accept unknown fields."""

    to: str


def test_a_tool_whose_args_allow_extra_fields_is_a_definition_error() -> None:
    with pytest.raises(ToolDefinitionError, match="LooseArgs must refuse unknown fields"):

        @tool(scope="outreach:fax.send", effect="external")
        def loose(ctx: ToolContext, args: LooseArgs) -> None:
            """Accepts anything."""


def test_edit_with_an_unknown_field_is_refused_and_names_the_fields(
    env: str, case_file: Path
) -> None:
    report = json.loads(
        cli(
            "run", "--agent", "demo", "--case", str(case_file), "--requester", "ops", "--json"
        ).stdout
    )
    approval, run_id = report["pending"][0]["approval_id"], report["run_id"]
    jordan = ("--reviewer", "jordan", "--role", "intake_coordinator")
    refused = cli("edit", approval, *jordan, "--set", "nonsense=1", code=ExitCode.REFUSED)
    assert "unknown field 'nonsense'" in refused.stderr
    assert "document_code, note, to" in refused.stderr  # the fields that exist
    # The typo did not approve the proposal: the hold is still pending.
    status = json.loads(cli("status", run_id, "--json").stdout)
    assert status["record"]["status"] == "paused"
    assert json.loads(cli("inbox", "--json").stdout)["approvals"][0]["approval_id"] == approval
    assert FAX  # the call's recipient is untouched (checked in the diff test)
