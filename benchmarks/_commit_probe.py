"""One side of ``compare_commits.py``: a long-lived process that measures the carebound it
imports (the checkout whose interpreter runs it) when told to, round by round.

It speaks JSON lines: it reads one command a line on stdin and answers each with one line on
stdout (everything else it or carebound prints goes to stderr). Commands:

* ``{"cmd": "park", "runs": N}``: start N demo runs to their first hold (untimed);
* ``{"cmd": "round", "decides": D, "queries": Q, "checkpoint_runs": C}``: start D demo runs,
  then time D ``Runner.decide`` approvals taken from the top of the inbox (each until the run
  has resumed, sent its fax and parked at its wait), Q inbox queries
  ``runner.pending(role=..., limit=20)``, and C runs of ``checkpoint_overhead.py``'s graph on
  the carebound ``RedisSaver`` and C on ``InMemorySaver``; answers with the times;
* ``{"cmd": "quit"}``.

It uses only the API both sides of a comparison share (``Runner``, ``Approve``,
``load_policy_pack``, ``WorldSpec.from_bundles``, ``carebound.checkpoint.RedisSaver``), so the
same file measures an old commit and a new one.

Usage (``compare_commits.py`` starts it)::

    CHECKOUT/.venv/bin/python benchmarks/_commit_probe.py --redis-url URL --prefix P --case FILE
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import redis
from checkpoint_overhead import build_graph, one_run
from langgraph.checkpoint.memory import InMemorySaver
from redis.connection import Connection

import carebound
from carebound import Approve, Runner
from carebound.checkpoint import RedisSaver
from carebound.guardrails import load_policy_pack
from carebound.tools.connectors import WorldSpec

ROLE = "intake_coordinator"
REVIEWERS = ("casey", "jordan")
REQUESTER = "alex"


class CountingConnection(Connection):
    """A real connection that counts its sends (one per round trip)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class Probe:
    """The runner, the graphs and the timed calls of one side."""

    def __init__(self, url: str, prefix: str, case_path: Path) -> None:
        pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        self.client = redis.Redis(connection_pool=pool)
        self.policy = load_policy_pack("default")
        self.runner = Runner(self.client, prefix=prefix, policy=self.policy)
        self.case = json.loads(case_path.read_text())
        self.world = WorldSpec.from_bundles(self.case, None)
        self.saver_graph = build_graph(RedisSaver(self.client, prefix=f"{prefix}-cp"))
        self.memory_graph = build_graph(InMemorySaver())
        self.decided = 0

    def park(self, runs: int) -> list[float]:
        """Start ``runs`` demo runs to their first hold; their ``Runner.start`` times."""
        times = []
        for _ in range(runs):
            begin = time.perf_counter()
            view = self.runner.start(
                "demo", self.case, requester=REQUESTER, policy=self.policy, world=self.world
            )
            times.append(time.perf_counter() - begin)
            if view.status != "paused" or view.pending is None:
                raise RuntimeError(f"run {view.run_id} did not park: {view.status}")
        return times

    def decide_one(self) -> tuple[float, float, int]:
        """Approve the most urgent hold; its wall and CPU time and round trips."""
        page = self.runner.pending(role=ROLE, limit=1)
        if not page:
            raise RuntimeError("the inbox ran dry")
        request = page[0].request
        reviewer = REVIEWERS[self.decided % 2]
        self.decided += 1
        decision = Approve(reviewer=reviewer, role=ROLE, args_hash=request.args_hash)
        sends = CountingConnection.sends
        begin, cpu = time.perf_counter(), time.process_time()
        result = self.runner.decide(request.approval_id, decision)
        wall, cpu = time.perf_counter() - begin, time.process_time() - cpu
        if result.outcome != "decided" or result.run.status != "waiting":
            raise RuntimeError(f"{request.approval_id}: {result.outcome}, {result.run.status}")
        return wall, cpu, CountingConnection.sends - sends

    def round(self, decides: int, queries: int, checkpoint_runs: int) -> dict[str, Any]:
        """One round of measurements (see the module docstring)."""
        start = self.park(decides)
        decide_s, decide_cpu_s, decide_trips = [], [], []
        for _ in range(decides):
            wall, cpu, trips = self.decide_one()
            decide_s.append(wall)
            decide_cpu_s.append(cpu)
            decide_trips.append(trips)
        inbox_s = []
        for _ in range(queries):
            begin = time.perf_counter()
            page = self.runner.pending(role=ROLE, limit=20)
            inbox_s.append(time.perf_counter() - begin)
            if not page:
                raise RuntimeError("the inbox is empty")
        timed: dict[str, float] = {}
        for name, graph in (("redis", self.saver_graph), ("memory", self.memory_graph)):
            begin = time.perf_counter()
            for _ in range(checkpoint_runs):
                one_run(graph)
            timed[name] = (time.perf_counter() - begin) / max(1, checkpoint_runs)
        return {
            "start_s": start,
            "decide_s": decide_s,
            "decide_cpu_s": decide_cpu_s,
            "decide_trips": decide_trips,
            "inbox_s": inbox_s,
            "checkpoint_redis_s": timed["redis"],
            "checkpoint_memory_s": timed["memory"],
        }


def versions() -> dict[str, str]:
    """The versions of the libraries on the measured path (both sides should match)."""
    names = ("langgraph", "langchain-core", "redis", "pydantic", "hiredis")
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "-"
    return found


def serve(probe: Probe, commands: TextIO, answers: TextIO) -> None:
    """Answer each command line until ``quit`` or the end of input."""
    for line in commands:
        command = json.loads(line)
        if command["cmd"] == "quit":
            return
        if command["cmd"] == "park":
            answer: dict[str, Any] = {"start_s": probe.park(command["runs"])}
        elif command["cmd"] == "round":
            answer = probe.round(command["decides"], command["queries"], command["checkpoint_runs"])
        else:
            answer = {"error": f"unknown command {command['cmd']!r}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def store_plain() -> None:
    """Diagnostic (``compare_commits.py --head-store-plain``): this process stores every value
    as it is, without the deflate a carebound of issue 17 or later applies to checkpoint values,
    audit events and stored JSON; what it stores reads back as ever (plain values carry no
    marker). It tells how much of a difference between two commits is that deflate."""
    from carebound.checkpoint import _codec
    from carebound.state import deflate

    def as_is(text: str, **_: Any) -> str:
        return text

    deflate.pack = as_is  # type: ignore[assignment]
    deflate.pack_raw = as_is  # type: ignore[assignment]
    _codec.COMPRESS_AT = None  # type: ignore[assignment]  # read when a saver is made


def main() -> None:
    """Build the probe, say ready, serve commands."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--case", required=True, type=Path)
    parser.add_argument("--store-plain", action="store_true")
    opts = parser.parse_args()
    if opts.store_plain:
        store_plain()
    answers = sys.stdout
    sys.stdout = sys.stderr  # only answers on the real stdout
    probe = Probe(opts.redis_url, opts.prefix, opts.case)
    answers.write(json.dumps({"ready": True, "carebound": carebound.__file__, **versions()}) + "\n")
    answers.flush()
    serve(probe, sys.stdin, answers)


if __name__ == "__main__":
    main()
