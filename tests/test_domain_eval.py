"""benchmarks/domain_eval.py runs with one command, and its labelled set is a regression gate:
every labelled high-risk difference held, no labelled missing item missed, few false holds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "domain_eval.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("domain_eval", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_and_its_labelled_set_is_decided_safely() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["reconciliation_cases"] >= 500
    held = figures["held_high_risk"]
    assert held["labelled"] >= 400
    assert held["recall"] == 1.0, [e for e in figures["errors"] if "labelled high" in e]
    assert figures["auto_fixed_low_risk"]["precision"] == 1.0
    assert figures["auto_fixed_low_risk"]["recall"] >= 0.95
    assert figures["false_holds"]["rate"] <= 0.01
    docs = figures["documents"]
    assert docs["missed"] == 0 and docs["reported_not_missing"] == 0, figures["errors"]

    text = _module().render(figures)
    for line in ("held high-risk differences", "auto-fixed low-risk", "false holds", "missed"):
        assert line in text
    assert f"recall {held['recall']:.3f}" in text
