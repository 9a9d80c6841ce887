"""Slow connector vs a short lease: does a call that outlives its lease ever run twice?

For each of N runs, a reviewer process approves a held fax whose connector takes ``--slow``
seconds (3 by default) while the run's lease lasts ``--lease-ms`` (1500 by default); meanwhile a
second worker process calls ``recover_runs()`` in a loop, as ``carebound worker`` does, ready
to take over any run whose lease lapses. The connector logs every call with its process id.

It prints the connector calls, the duplicate calls (a run's connector called more than once),
the lease takeovers (a run's connector called by the second worker) and what the reviewer was
told (decided / an error). Exit status 1 when any call was duplicated.

Usage::

    python benchmarks/slow_connector_lease.py [--runs 5] [--slow 3] [--lease-ms 1500]
                                              [--redis-url URL]

Without ``--redis-url`` a throwaway local server is started (see _local_server.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from benchmarks._local_server import local_server  # noqa: E402
from carebound import Approve, Runner, VirtualClock  # noqa: E402
from carebound.tools.connectors import WorldSpec  # noqa: E402
from tests.isolation_agents import (  # noqa: E402
    AGENTS,
    CALLS_FILE_VAR,
    SLOW_S_VAR,
    isolation_pack,
)

CASE = json.loads((PROJECT / "scenarios" / "cases" / "hello_referral.json").read_text())


def measure(url: str, runs: int, slow_s: float, lease_ms: int) -> dict[str, object]:
    """Run the experiment; return its figures."""
    calls = Path(tempfile.mkdtemp(prefix="cb-slow-")) / "calls"
    calls.touch()
    os.environ[CALLS_FILE_VAR] = str(calls)
    os.environ[SLOW_S_VAR] = str(slow_s)
    prefix = f"bench-slow-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(url)
    answers: Counter[str] = Counter()
    with Runner(
        client,
        prefix=prefix,
        clock=VirtualClock(),
        agents=AGENTS,
        policy=isolation_pack(),
        lease_ttl_ms=lease_ms,
    ) as runner:
        held = []
        for _ in range(runs):
            view = runner.start(
                "slow_held", CASE, requester="sam", world=WorldSpec.from_bundles(CASE, None)
            )
            assert view.pending is not None
            held.append(view.pending.request)
        seconds = runs * (slow_s + 1) + 10
        contender = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.lease_contender",
                url,
                prefix,
                str(seconds),
                str(lease_ms),
            ],
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stdout=subprocess.DEVNULL,
        )
        time.sleep(3)  # the contender is up and polling
        for request in held:
            decision = Approve(
                reviewer="casey", role="intake_coordinator", args_hash=request.args_hash
            )
            try:
                result = runner.decide(request.approval_id, decision)
                answers[f"{result.outcome} ({result.run.status})"] += 1
            except Exception as exc:  # what the reviewer would be told
                answers[f"error: {type(exc).__name__}"] += 1
        contender.terminate()
        contender.wait()
    starts = [line.split() for line in calls.read_text().splitlines() if line.startswith("start")]
    keys = client.keys(f"{prefix}:*")
    if keys:
        client.delete(*keys)
    client.close()
    by_pid = Counter(pid for _, pid, _ in starts)
    return {
        "runs": runs,
        "connector_s": slow_s,
        "lease_ms": lease_ms,
        "connector_calls": len(starts),
        "duplicate_calls": len(starts) - runs,
        "lease_takeovers": by_pid.get(str(contender.pid), 0),
        "reviewer_answers": dict(answers),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow", type=float, default=3.0, help="connector seconds per call")
    parser.add_argument("--lease-ms", type=int, default=1500)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    if args.redis_url:
        figures = measure(args.redis_url, args.runs, args.slow, args.lease_ms)
    else:
        with local_server() as url:
            figures = measure(url, args.runs, args.slow, args.lease_ms)
    print(json.dumps(figures, indent=2))
    return 1 if figures["duplicate_calls"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
