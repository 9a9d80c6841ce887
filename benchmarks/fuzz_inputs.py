"""The long input fuzz: thousands of mutated scenarios, case bundles, world files and policy
packs through ``carebound run``; none may exit outside 0/1/2, print a traceback, or change
another run's keys.

    python benchmarks/fuzz_inputs.py                      # 2,000 examples, own redis-server
    python benchmarks/fuzz_inputs.py --examples 5000 --redis-url redis://127.0.0.1:6379/0

Prints the count of inputs by exit code, the rate, and every input that broke a rule (the
exit code is 1 if any did). The same property runs briefly in the test suite
(tests/test_fuzz_inputs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import seed as use_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzzing import KNOWN_CRASHERS, Mutation, mutations, run_one, tagged_state
from tests.servers import ServerProcess, redis_binary, valkey_binary


def main() -> int:
    """Run the fuzz and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs to try")
    parser.add_argument("--seed", type=int, default=12, help="hypothesis seed")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        binary = redis_binary() or valkey_binary()
        if binary is None:
            sys.exit("no redis-server or valkey-server found: give --redis-url")
        server = ServerProcess(binary, appendonly=False)
        server.start()
        url = server.url
    prefix = f"fuzz{uuid.uuid4().hex[:8]}"
    os.environ.update(CAREBOUND_REDIS_URL=url, CAREBOUND_PREFIX=prefix)
    os.environ.pop("CAREBOUND_DEBUG", None)
    client = redis.Redis.from_url(url)
    try:
        return _fuzz(client, prefix, args.examples, args.seed)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
        if server is not None:
            server.cleanup()


def _fuzz(client: redis.Redis, prefix: str, examples: int, seed: int) -> int:
    from carebound import Runner, VirtualClock
    from carebound.tools.connectors import WorldSpec

    project = Path(__file__).resolve().parents[1]
    case = json.loads((project / "scenarios" / "cases" / "hello_referral.json").read_text())
    bystander = Runner(client, prefix=prefix, clock=VirtualClock()).start(
        "demo", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    before = tagged_state(client, prefix, bystander.run_id)
    codes: Counter[int] = Counter()
    targets: Counter[str] = Counter()
    broken: list[tuple[Mutation, str]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @use_seed(seed)
    @given(mutation=mutations)
    def check(mutation: Mutation) -> None:
        outcome = run_one(
            mutation, client=client, prefix=prefix, bystander=bystander.run_id, before=before
        )
        codes[outcome.exit_code] += 1
        targets[mutation.target] += 1
        if outcome.problem is not None:
            broken.append((mutation, outcome.problem))

    for crasher in KNOWN_CRASHERS:  # the inputs that once crashed are tried first
        check = example(mutation=crasher)(check)
    started = time.perf_counter()
    check()
    elapsed = time.perf_counter() - started
    total = sum(codes.values())
    print(f"inputs tried: {total:,} in {elapsed:.1f} s ({total / elapsed:.1f} inputs/s)")
    print("by file:      " + ", ".join(f"{k} {v}" for k, v in sorted(targets.items())))
    print("by exit code: " + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())))
    print(f"broke a rule: {len(broken)} (exit outside 0/1/2, traceback, or another run changed)")
    for mutation, problem in broken[:20]:
        print(f"  - {mutation!r}\n    {problem[:400]}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
