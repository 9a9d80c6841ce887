"""Scenarios: YAML files that run an agent on a case in a simulated world, on a virtual clock,
with scripted reviewer decisions and expected outcomes. Every scenario is also a test."""

from carebound.scenario._load import ScenarioError, load_scenario
from carebound.scenario._model import Expectation, Scenario, ScenarioWorld, ScriptedDecision
from carebound.scenario._run import ScenarioResult, run_case, run_scenario

__all__ = [
    "Expectation",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "ScenarioWorld",
    "ScriptedDecision",
    "load_scenario",
    "run_case",
    "run_scenario",
]
