"""Loading scenario files and the files they point to, with errors that name the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from carebound._errors import CareboundError
from carebound._limits import InputLimitError, load_document
from carebound.guardrails import format_validation_error
from carebound.scenario._model import Scenario


class ScenarioError(CareboundError):
    """A scenario file is missing, malformed, or points at a file that is."""


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file", hint="check the path")
    try:
        data = load_document(path, "yaml")
    except InputLimitError as exc:
        raise ScenarioError(exc.message, hint=exc.hint) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{path}: a scenario must be a YAML mapping", hint="start with 'agent:' and 'case:'"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            f"{path}: invalid scenario:\n{format_validation_error(exc)}",
            hint="correct the keys named above; see README 'Scenarios'",
        ) from None


def resolve(base: Path, ref: str, *, key: str, scenario: Path) -> Path:
    """A path from a scenario, relative to the scenario file; it must exist."""
    path = (base / ref).resolve()
    if not path.is_file():
        raise ScenarioError(
            f"{scenario}: {key} points to {ref!r}, which does not exist ({path})",
            hint="paths in a scenario are relative to the scenario file",
        )
    return path


def load_json(path: Path, *, key: str, scenario: Path) -> Any:
    """A JSON file referenced by a scenario, read under the input limits."""
    try:
        return load_document(path, "json")
    except InputLimitError as exc:
        raise ScenarioError(f"{exc.message} (scenario {scenario}, {key})", hint=exc.hint) from None
