"""The ``referral_intake`` scenario's case and simulated world, and a counter of the checkpoints
LangGraph hands a Runner's saver: shared by the tests that count a start's steps and trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carebound import Runner
from carebound.tools.connectors import WorldSpec

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _bundle(path: str) -> Any:
    return json.loads((SCENARIOS / path).read_text())


def intake_case_and_world() -> tuple[Any, WorldSpec]:
    """The Delgado intake case and its EHR and payer worlds."""
    world = WorldSpec.from_bundles(
        _bundle("ehr/intake_delgado.json"), _bundle("payer/intake_delgado.json")
    )
    return _bundle("cases/intake_delgado.json"), world


def count_checkpoints_made(runner: Runner) -> Callable[[], int]:
    """Count each checkpoint LangGraph hands ``runner``'s saver from now on (whether or not it
    reaches Redis); the returned function reads the count."""
    made = 0
    put = runner._saver.put  # private: counting what LangGraph hands the saver

    def counted_put(*args: Any) -> Any:
        nonlocal made
        made += 1
        return put(*args)

    setattr(runner._saver, "put", counted_put)  # noqa: B010 (test instrumentation)
    return lambda: made
