"""Every scenario in scenarios/ is a test: it runs on real Redis and must meet its `expect`."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from carebound.scenario import run_scenario
from tests.conftest import SCENARIOS

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_exist() -> None:
    assert SCENARIO_FILES, "scenarios/ holds no scenario files"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario(path: Path, server_url: str, key_prefix: str) -> None:
    client = redis.Redis.from_url(server_url)
    try:
        result = run_scenario(path, client, prefix=key_prefix)
    finally:
        client.close()
    assert result.passed is not None, f"{path.name} states no expectations"
    assert result.passed, f"{path.name}: " + "; ".join(result.failures)
