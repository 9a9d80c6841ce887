"""A second worker process that tries to take runs over: it calls ``recover_runs()`` in a loop
(as ``carebound worker`` does), with a short lease. Used by tests/test_lease_heartbeat.py and
benchmarks/slow_connector_lease.py.

Usage: python -m tests.lease_contender URL PREFIX SECONDS LEASE_TTL_MS
"""

from __future__ import annotations

import sys
import time

import redis

from carebound import Runner, VirtualClock
from tests.isolation_agents import AGENTS, isolation_pack


def contend(url: str, prefix: str, seconds: float, lease_ttl_ms: int) -> int:
    """Drive every marked run for ``seconds``; returns how many runs it drove."""
    client = redis.Redis.from_url(url)
    driven = 0
    with Runner(
        client,
        prefix=prefix,
        clock=VirtualClock(),
        agents=AGENTS,
        policy=isolation_pack(),
        lease_ttl_ms=lease_ttl_ms,
    ) as runner:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            driven += len(runner.recover_runs().recovered)
            time.sleep(0.05)
    client.close()
    return driven


if __name__ == "__main__":
    url, prefix, seconds, ttl = sys.argv[1:5]
    print(contend(url, prefix, float(seconds), int(ttl)))
