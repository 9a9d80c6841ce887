"""Long-running commands freeze the heap they start with (carebound.cli._heap); the library
and one-shot commands leave the garbage collector alone; CAREBOUND_GC_FREEZE=0 opts out."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from carebound import Runner
from carebound.cli import app
from carebound.cli._heap import FREEZE_VAR, freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start unfrozen, and give the test process its collector back afterwards."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _worker(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["worker", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_freeze_moves_the_live_heap_out_of_collections(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FREEZE_VAR, raising=False)
    assert freeze_startup_heap() is True
    assert gc.get_freeze_count() > 10_000  # the imported modules, schemas, graphs


@pytest.mark.parametrize("off", ["0", "off", "False", " no "])
def test_opting_out_leaves_the_collector_alone(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch, off: str
) -> None:
    monkeypatch.setenv(FREEZE_VAR, off)
    assert freeze_startup_heap() is False
    assert gc.get_freeze_count() == 0


def test_a_sweeping_worker_freezes_a_one_shot_sweep_does_not(
    env: str, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FREEZE_VAR, "1")
    assert _worker("--once")["sweeps"] == 1
    assert gc.get_freeze_count() == 0
    assert _worker("--sweeps", "2", "--interval", "0")["sweeps"] == 2
    assert gc.get_freeze_count() > 10_000


def test_a_sweeping_worker_opted_out_does_not_freeze(
    env: str, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FREEZE_VAR, "0")
    assert _worker("--sweeps", "2", "--interval", "0")["sweeps"] == 2
    assert gc.get_freeze_count() == 0


def test_the_library_leaves_the_collector_alone(
    unfrozen: None, redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FREEZE_VAR, raising=False)
    Runner(redis_client, prefix=key_prefix)
    assert gc.get_freeze_count() == 0
