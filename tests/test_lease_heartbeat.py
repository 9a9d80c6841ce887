"""The run lease is heartbeated while a tool call runs: a connector call longer than the lease
is never made again, concurrently, by another process, and the reviewer whose decision started
it gets the run's true state. Two real processes on a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import Approve, Runner, VirtualClock
from carebound.state.lease import Lease, RunLease
from carebound.tools.connectors import WorldSpec
from tests.isolation_agents import AGENTS, CALLS_FILE_VAR, SLOW_S_VAR, isolation_pack

PROJECT = Path(__file__).resolve().parents[1]
LEASE_MS = 1500
SLOW_S = 3.0


def _starts(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("start")]


def test_a_slow_call_keeps_its_lease_and_runs_once(
    redis_url: str,
    key_prefix: str,
    demo_case: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = tmp_path / "calls"
    calls.touch()
    monkeypatch.setenv(CALLS_FILE_VAR, str(calls))
    monkeypatch.setenv(SLOW_S_VAR, str(SLOW_S))
    client = redis.Redis.from_url(redis_url)
    with Runner(
        client,
        prefix=key_prefix,
        clock=VirtualClock(),
        agents=AGENTS,
        policy=isolation_pack(),
        lease_ttl_ms=LEASE_MS,
    ) as runner:
        view = runner.start(
            "slow_held", demo_case, requester="sam", world=WorldSpec.from_bundles(demo_case, None)
        )
        assert view.status == "paused" and view.pending is not None
        request = view.pending.request
        contender = subprocess.Popen(
            [sys.executable, "-m", "tests.lease_contender", redis_url, key_prefix, "6", "1500"],
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # the contender is up and polling
        began = time.monotonic()
        decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
        result = runner.decide(request.approval_id, decision)
        took = time.monotonic() - began
        _, err = contender.communicate(timeout=60)
    client.close()
    assert contender.returncode == 0, err
    assert took >= SLOW_S  # the call outlived the lease twice over
    starts = _starts(calls)
    assert len(starts) == 1, starts  # never called again, concurrently or after
    assert str(contender.pid) not in starts[0]
    # The reviewer is told what happened: the decision applied and the run moved on.
    assert result.outcome == "decided"
    assert result.run.status == "completed"
    assert [e.status for e in result.run.effects] == ["done"]


def test_the_heartbeat_renews_with_the_fencing_token_and_stops(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    leases = RunLease(redis_client, prefix=key_prefix)
    lease = leases.acquire("r1", "me", 300)
    assert lease is not None
    with leases.heartbeat(lease, every_s=0.05) as beat:
        time.sleep(0.6)  # twice the ttl
        assert leases.acquire("r1", "thief", 300) is None  # still ours
    assert beat.renewals >= 5 and not beat.lost
    time.sleep(0.4)  # stopped: the lease lapses
    assert leases.acquire("r1", "thief", 300) is not None
    stale = Lease("r1", "me", lease.token, 0, 300)
    with leases.heartbeat(stale, every_s=0.05) as beat:
        time.sleep(0.2)
    assert beat.lost  # taken over: renewing with the old token fails, and it stops


def test_a_lease_due_sooner_wakes_the_sleeping_heartbeat(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """The heartbeat thread is woken only for a lease due before it would wake anyway: one
    registered while it sleeps on a far-off lease is still renewed in time."""
    leases = RunLease(redis_client, prefix=key_prefix)
    slow, fast = leases.acquire("r-slow", "me", 600_000), leases.acquire("r-fast", "me", 300)
    assert slow is not None and fast is not None
    with leases.heartbeat(slow, every_s=300):
        time.sleep(0.1)  # the thread sleeps until the slow lease is due
        with leases.heartbeat(fast, every_s=0.05) as beat:
            time.sleep(0.6)  # twice the fast lease's ttl
            assert leases.acquire("r-fast", "thief", 300) is None  # still ours
    assert beat.renewals >= 5 and not beat.lost
