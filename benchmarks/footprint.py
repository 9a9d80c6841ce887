"""Footprint benchmark: Redis bytes per parked run, per agent, and the cost of a start.

Real runs only: each run is started with ``Runner.start`` on its scenario's case and simulated
world and left where it first stops (the demo agent on its held fax, ``referral_intake``
waiting for the office's reply), in several processes to go faster. Each (agent, size) gets
its own key space on the same server, parked one after the other; per size it prints:

* bytes per parked run: the server's ``used_memory`` growth while parking, divided by the
  runs (what a deployment pays, indexes and allocator overhead included);
* the same without the simulator's world (what a deployment on real connectors pays; the
  targets apply to this figure);
* where a run's bytes go: exact ``MEMORY USAGE`` of every key of a sample of runs by key
  family (checkpoints, their blobs and writes, audit, run record, ledger, approvals, lease,
  the simulator's world), and of the key space's shared keys (audit index, inbox, run
  indexes, policy packs) divided by the runs parked.

Before any of it, a few runs of each agent are parked in a throwaway key space and deleted
again, and what the server kept of them is printed on its own line, not counted per run: a
server's first runs make it allocate, once for its lifetime, a latency histogram for each
command name it runs (Redis 7's ``latency-tracking``, on by default: about 20 KB per command,
some 600 KB for the commands a run uses) and the cache of the Lua scripts they call. A
deployment pays that once per server whatever number of runs it holds (measured: 1,000 demo
runs on a fresh server cost 0.6 KB per run more than on a warmed one; with
``latency-tracking no`` the difference is gone), so it is not a parked run's bytes. The key
space's own shared keys (indexes, policy packs) stay counted per run.

Then, in this process: start -> park of ``referral_intake`` (``Runner.start``, warm) against a
bare 10-node LangGraph graph run to its end on an in-memory checkpointer, interleaved, p50
ratio (with the CPU-time ratio, steadier on a busy machine, and the Redis round trips of a start).
Targets (issue 17): <= 24 KB per parked referral_intake run, <= 8 KB per parked demo
run, start ratio <= 4x.

Usage::

    python benchmarks/footprint.py [--redis-url URL] [--sizes 1000,10000] [--jobs N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import redis
from _local_server import delete_prefix, local_server
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from redis.connection import Connection

from carebound import Runner
from carebound.tools.connectors import WorldSpec

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
AGENTS = {
    # agent: (case, EHR world or None (the case itself), payer world or None, where it parks)
    "demo": ("cases/hello_referral.json", None, None, "paused"),
    "referral_intake": (
        "cases/intake_delgado.json",
        "ehr/intake_delgado.json",
        "payer/intake_delgado.json",
        "waiting",
    ),
}
TARGET_KB = {"demo": 8.0, "referral_intake": 24.0}
START_RATIO_TARGET = 4.0
SAMPLE = 50


def _json(path: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / path).read_text()))


def case_and_world(agent: str) -> tuple[dict[str, Any], WorldSpec, str]:
    """The agent's case, its simulated world and the status it parks in."""
    case_path, ehr_path, payer_path, parks = AGENTS[agent]
    case = _json(case_path)
    ehr = _json(ehr_path) if ehr_path else case
    payer = _json(payer_path) if payer_path else None
    return case, WorldSpec.from_bundles(ehr, payer), parks


# -- parking (in worker processes) -------------------------------------------------------

_STATE: dict[str, Any] = {}


def _init(url: str, prefix: str, agent: str) -> None:
    case, world, parks = case_and_world(agent)
    runner = Runner(redis.Redis.from_url(url), prefix=prefix)
    _STATE.update(runner=runner, case=case, world=world, parks=parks, agent=agent)


def _park(count: int) -> list[str]:
    runner: Runner = _STATE["runner"]
    ids = []
    for _ in range(count):
        view = runner.start(_STATE["agent"], _STATE["case"], requester="sam", world=_STATE["world"])
        if view.status != _STATE["parks"]:
            raise RuntimeError(f"run {view.run_id} stopped {view.status}, not {_STATE['parks']}")
        ids.append(view.run_id)
    return ids


def park(url: str, prefix: str, agent: str, size: int, jobs: int) -> tuple[list[str], float]:
    """Park ``size`` runs of ``agent`` under ``prefix``; their ids and the wall time."""
    chunk = max(1, min(100, size // (jobs * 4) or 1))
    chunks = [min(chunk, size - i) for i in range(0, size, chunk)]
    begin = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(url, prefix, agent),
    ) as pool:
        ids = [run_id for part in pool.map(_park, chunks) for run_id in part]
    return ids, time.perf_counter() - begin


WARM_UP_RUNS = 8


def warm_up(client: redis.Redis, url: str, prefix: str, agents: list[str], jobs: int) -> int:
    """Park a few runs of each agent under ``prefix`` and delete them: the bytes the server
    kept (its one-time cost, see the module's docstring)."""
    before = int(client.info("memory")["used_memory"])
    for agent in agents:
        park(url, prefix, agent, WARM_UP_RUNS, jobs)
    delete_prefix(client, prefix)
    return int(client.info("memory")["used_memory"]) - before


# -- where the bytes go --------------------------------------------------------------------

WORLD = "simulator world"
RUN_FAMILIES = [
    # (start of the key part after the run's hash tag, family)
    ("cp:blob", "checkpoint blobs"),
    ("cp:w", "checkpoint writes"),
    ("cp:", "checkpoints"),
    ("audit", "audit"),
    ("run", "run record"),
    ("case", "run record"),
    ("waits", "run record"),
    ("ledger", "ledger"),
    ("approval", "approvals"),
    ("lease", "lease"),
    ("keys", "key registry"),
    ("world", WORLD),
]
GLOBAL_FAMILIES = [
    # (start of the key after the prefix, family): keys shared by the runs of a key space
    ("audit", "audit index"),
    ("inbox", "inbox"),
    ("runs", "run indexes"),
    ("cp:threads", "run indexes"),
    ("wait:", "run indexes"),
    ("pack:", "packs, PHI tables (shared)"),
    ("phi:", "packs, PHI tables (shared)"),
]


def family_of(part: str, families: list[tuple[str, str]]) -> str:
    """The key family of a key (its part after the run's hash tag, or after the prefix)."""
    return next((name for start, name in families if part.startswith(start)), "other")


def breakdown(client: redis.Redis, prefix: str, run_ids: list[str], runs: int) -> Counter[str]:
    """Mean bytes per run by key family: exact ``MEMORY USAGE`` (``SAMPLES 0``) of every key
    of ``run_ids``, and of the key space's shared keys (indexes, the audit index, the inbox)
    divided by the ``runs`` parked in it."""
    total: Counter[str] = Counter()
    for run_id in run_ids:
        tag = f"{prefix}:{{{run_id}}}:"
        for key in client.scan_iter(match=f"{tag}*", count=1000):
            family = family_of(key.decode()[len(tag) :], RUN_FAMILIES)
            total[family] += int(client.memory_usage(key, samples=0) or 0)
    per_run = Counter({k: v / len(run_ids) for k, v in total.items()})
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        part = key.decode()[len(prefix) + 1 :]
        if not part.startswith("{"):
            family = family_of(part, GLOBAL_FAMILIES)
            per_run[family] += int(client.memory_usage(key, samples=0) or 0) / runs
    return per_run


# -- start cost ------------------------------------------------------------------------------


class _Bare(TypedDict):
    n: int


def bare_graph() -> Any:
    """The reference: ten nodes in a row, in-memory checkpointer, no carebound, no Redis."""
    builder = StateGraph(_Bare)
    names = [f"n{i}" for i in range(10)]
    for name in names:
        builder.add_node(name, lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=InMemorySaver())


class _CountingConnection(Connection):
    """A real connection that counts its sends (one per round trip)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        _CountingConnection.sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class StartCost(NamedTuple):
    """p50 wall and CPU ms of a warm start -> park and of the bare run; round trips per start."""

    start_ms: float
    bare_ms: float
    start_cpu_ms: float
    bare_cpu_ms: float
    round_trips: float


def start_ratio(url: str, prefix: str, rounds: int) -> StartCost:
    """A warm referral_intake start -> park against the bare graph run, interleaved."""
    case, world, parks = case_and_world("referral_intake")
    pool = redis.ConnectionPool.from_url(url, connection_class=_CountingConnection)
    runner = Runner(redis.Redis(connection_pool=pool), prefix=prefix)
    graph = bare_graph()
    starts, bares, start_cpu, bare_cpu, trips = [], [], [], [], []
    for i in range(rounds + 5):
        sends = _CountingConnection.sends
        begin, cpu = time.perf_counter(), time.process_time()
        view = runner.start("referral_intake", case, requester="sam", world=world)
        took, took_cpu = time.perf_counter() - begin, time.process_time() - cpu
        if view.status != parks:
            raise RuntimeError(f"run {view.run_id} stopped {view.status}")
        sent = _CountingConnection.sends - sends
        begin, cpu = time.perf_counter(), time.process_time()
        graph.invoke({"n": 0}, {"configurable": {"thread_id": f"bare-{i}"}}, durability="sync")
        bare, bare_took_cpu = time.perf_counter() - begin, time.process_time() - cpu
        if i >= 5:  # warm-up
            starts.append(took)
            bares.append(bare)
            start_cpu.append(took_cpu)
            bare_cpu.append(bare_took_cpu)
            trips.append(sent)
    return StartCost(
        *(statistics.median(xs) * 1000 for xs in (starts, bares, start_cpu, bare_cpu)),
        round_trips=statistics.median(trips),
    )


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    """Run the benchmark; exit status 0 when every target is met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    parser.add_argument("--sizes", default="1000,10000", help="parked runs per agent")
    parser.add_argument("--agents", default=",".join(AGENTS), help="agents to measure")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="processes")
    parser.add_argument("--start-rounds", type=int, default=100, help="timed starts")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    agents = opts.agents.split(",")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
    checks: list[tuple[str, str, bool]] = []
    with ExitStack() as stack:
        url = opts.redis_url or stack.enter_context(local_server())
        client = redis.Redis.from_url(url)
        stack.callback(client.close)
        base = f"cbfoot{uuid.uuid4().hex[:8]}"
        warm = warm_up(client, url, f"{base}-warm-up", agents, opts.jobs)
        print(f"server's one-time cost, paid by its first runs whatever the key space (latency "
              f"histograms per command, Lua script cache), not counted per run: "
              f"{warm / 1024:,.0f} KB")  # fmt: skip
        print()
        print(f"{'agent':<18}{'parked':>9}{'bytes/run':>11}{'KB/run':>8}{'no world':>10}"
              f"{'target':>8}  per run, by key family (KB, MEMORY USAGE)")  # fmt: skip
        for agent in agents:
            worst = 0.0
            for size in sizes:
                prefix = f"{base}-{agent}-{size}"
                before = int(client.info("memory")["used_memory"])
                ids, _ = park(url, prefix, agent, size, opts.jobs)
                grown = int(client.info("memory")["used_memory"]) - before
                per_run = grown / size
                parts = breakdown(client, prefix, ids[:SAMPLE], size)
                # the simulator's world is stored only for simulated runs: a deployment on
                # real connectors does not pay it, so the target is checked without it
                real = (per_run - parts[WORLD]) / 1024
                worst = max(worst, real)
                target = TARGET_KB.get(agent)
                shown = ", ".join(f"{k} {v / 1024:.1f}" for k, v in parts.most_common())
                print(f"{agent:<18}{size:>9,}{per_run:>11,.0f}{per_run / 1024:>8.1f}"
                      f"{real:>10.1f}{f'{target:.0f}' if target else '-':>8}  {shown}")  # fmt: skip
                delete_prefix(client, prefix)
            target = TARGET_KB.get(agent)
            if target is not None:
                checks.append(
                    (f"{agent}: <= {target:.0f} KB per parked run, without the simulator's "
                     "world (worst size)",
                     f"{worst:.1f} KB", worst <= target)
                )  # fmt: skip
        prefix = f"{base}-start"
        cost = start_ratio(url, prefix, opts.start_rounds)
        delete_prefix(client, prefix)
    ratio = cost.start_ms / cost.bare_ms
    print()
    print(f"start -> park referral_intake p50 {cost.start_ms:.1f} ms; bare 10-node LangGraph run "
          f"(in memory) p50 {cost.bare_ms:.1f} ms; ratio {ratio:.1f}x")  # fmt: skip
    print(f"  CPU time of this process: start p50 {cost.start_cpu_ms:.1f} ms, bare p50 "
          f"{cost.bare_cpu_ms:.1f} ms, ratio {cost.start_cpu_ms / cost.bare_cpu_ms:.1f}x; "
          f"{cost.round_trips:.0f} Redis round trips per start")  # fmt: skip
    checks.append((f"start ratio <= {START_RATIO_TARGET:.0f}x", f"{ratio:.1f}x",
                   ratio <= START_RATIO_TARGET))  # fmt: skip
    print()
    for label, value, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {label}: {value}")
    print(f"load average {os.getloadavg()[0]:.2f} at end (other work on the machine skews timings)")
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
