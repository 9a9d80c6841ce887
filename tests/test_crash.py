"""Crash safety with real processes: a worker running demo runs is SIGKILLed again and again.

Each test restarts the worker (``tests/crashworker.py``) after every kill; the new process
recovers what the dead one left. At the end every run must be ``completed`` with exactly one
fax at the connector (repeated send calls are fine: that is the de-duplication working), every
ledger entry ``done``, the audit chain intact, and nothing left in the to-drive set.

Kills in this file: 8 kill points x 4 runs = 32 self-kills at exact places, 1 kill while every
run is parked on its hold, 1 self-kill of a ``python -m tests.crashworker`` process between
ledger reserve and effect, and 16 kills at random times (seeded: the seed is printed and is
set with CAREBOUND_CRASH_SEED to replay a failure): 50 in all.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import redis

from tests.crashworker import (
    KILL_ENV,
    KILL_POINTS,
    RunCheck,
    check_runs,
    fired_hooks,
    fork_worker,
    kill_after,
    killed,
    run_ids,
    run_to_end,
    statuses,
    wait_for,
    wait_ready,
    worker_argv,
)

PROJECT = Path(__file__).resolve().parents[1]
RANDOM_KILLS = 16


def assert_all_safe(checks: list[RunCheck], context: str = "") -> None:
    """Every run completed with exactly one effect, a clean ledger and a verified audit."""
    problems = {c.run_id: c.problems() for c in checks if c.problems()}
    assert not problems, f"{context}{problems}"
    assert sum(c.lost for c in checks) == 0
    assert sum(c.duplicated for c in checks) == 0


def cli_worker(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``python -m tests.crashworker`` to its end; its exit code."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.crashworker", *argv],
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    return proc.returncode


def test_every_kill_point_recovers(redis_url: str, key_prefix: str) -> None:
    runs = 4
    client = redis.Redis.from_url(redis_url)
    argv = worker_argv(redis_url, key_prefix, runs, kill_at=KILL_POINTS, exit_when_done=True)

    deaths = run_to_end(argv)

    fired = fired_hooks(client, key_prefix)
    assert fired == {point: set(run_ids(runs)) for point in KILL_POINTS}
    assert deaths == len(KILL_POINTS) * runs
    checks = check_runs(client, key_prefix, runs)
    assert_all_safe(checks)
    # The three kills after the fax went out and before the step's next round trip ("effect",
    # "step", "plan": the fax's record rides that round trip, so it had not landed) made the
    # connector see each fax four times, and send it once.
    assert [c.attempts for c in checks] == [4] * len(checks)


def test_kill_while_parked_then_between_reserve_and_effect(redis_url: str, key_prefix: str) -> None:
    runs = 3
    client = redis.Redis.from_url(redis_url)
    parked = fork_worker(worker_argv(redis_url, key_prefix, runs, park_only=True))
    wait_for(lambda: statuses(client, key_prefix, runs) == ["paused"] * runs)
    assert kill_after(parked, 0), "the parked worker exited by itself"

    # A fresh interpreter with the kill point from the environment: it decides the first
    # hold, the ledger reserves the fax's key, and the process dies before the connector call.
    code = cli_worker(worker_argv(redis_url, key_prefix, runs), env={KILL_ENV: "reserve"})
    assert killed(code), f"worker exited with {code}, expected SIGKILL"
    assert len(fired_hooks(client, key_prefix)["reserve"]) == 1
    reserved = [c for c in check_runs(client, key_prefix, runs) if c.ledger == ("reserved",)]
    assert len(reserved) == 1 and reserved[0].attempts == 0

    assert cli_worker(worker_argv(redis_url, key_prefix, runs, exit_when_done=True)) == 0
    checks = check_runs(client, key_prefix, runs)
    assert_all_safe(checks)
    assert all(c.attempts == 1 for c in checks)


def test_random_kills(redis_url: str, key_prefix: str) -> None:
    seed = int(os.environ.get("CAREBOUND_CRASH_SEED") or random.randrange(2**32))
    print(f"crash seed {seed}: replay with CAREBOUND_CRASH_SEED={seed}")
    rng = random.Random(seed)
    client = redis.Redis.from_url(redis_url)
    runs, batch, kills, restarts = 6, 6, 0, 0
    while kills < RANDOM_KILLS:
        restarts += 1
        assert restarts < RANDOM_KILLS * 3, f"seed {seed}: the worker keeps ending by itself"
        proc = fork_worker(worker_argv(redis_url, key_prefix, runs, seed=rng.randrange(2**31)))
        wait_ready(client, key_prefix, proc)
        if kill_after(proc, rng.uniform(0, 0.35)):
            kills += 1
        else:
            raise AssertionError(f"seed {seed}: worker exited with {proc.exitcode}")
        if statuses(client, key_prefix, runs) == ["completed"] * runs:
            runs += batch  # keep work in flight, so every kill lands on something

    run_to_end(worker_argv(redis_url, key_prefix, runs, exit_when_done=True), limit=1)
    assert_all_safe(check_runs(client, key_prefix, runs), context=f"seed {seed}: ")
