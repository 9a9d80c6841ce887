"""Workers: throughput of the pool, and what SIGKILLed workers lose.

N ``referral_intake`` runs (the intake scenario's case and world, no reply scripted: each run
chases, reconciles and stops waiting for the office) are started with ``drive="queue"``; worker
processes (``WorkerPool``, ``--concurrency`` slots each) drive them to that stop. Every
connector call sleeps ``--latency-ms`` first (I/O-bound work, as with real systems). For 1, 2
and 4 worker processes it prints runs/s and, last, the 4-worker/1-worker ratio measured in the
same run. Then it drives N more runs with 4 workers while SIGKILLing a random worker ``--kills``
times (a replacement starts each time), and prints, last::

    runs N completed N lost 0 duplicate_effects 0 duplicate_drives D reclaimed R

``completed``: runs at their stop; ``lost``: runs not at a stop when the queue drained (or after
``--timeout``); ``duplicate_effects``: effects a simulated system applied twice (more effects
than distinct idempotency keys); ``duplicate_drives``: connector calls made while another drive
of the same run was inside a connector call (two drivers at once; counted in the SIGKILL phase,
whose workers track every call); ``reclaimed``: messages taken over from a dead worker
(XAUTOCLAIM).

Usage::

    python benchmarks/workers.py [--runs 500] [--latency-ms 50] [--concurrency 8]
                                 [--kills 50] [--redis-url URL] [--cluster-url URL]

Without ``--redis-url`` a throwaway local server is started (see _local_server.py); with
``--cluster-url`` (any node of a Redis Cluster) the same is measured on the cluster too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from benchmarks._local_server import local_server, server_binary  # noqa: E402
from carebound import Runner  # noqa: E402
from carebound.engine.pool import PoolSettings  # noqa: E402
from carebound.scenario import load_scenario  # noqa: E402
from carebound.tools.connectors import RunContext, WorldSpec  # noqa: E402
from carebound.tools.connectors.simulated import SimulatedConnectors, World  # noqa: E402
from tests.servers import redis_cluster  # noqa: E402

SCENARIO = PROJECT / "scenarios" / "intake_end_to_end.yaml"
STOPS = {"waiting", "paused", "completed", "failed", "budget_exhausted", "cancelled"}
LEASE_TTL_MS = 10_000


def connect(url: str, cluster: bool) -> Any:
    """A client of ``url`` (a Redis Cluster client with ``cluster``)."""
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def case_and_world() -> tuple[dict[str, Any], WorldSpec]:
    """The intake scenario's case and world, with no reply scripted (runs stop waiting)."""
    scenario = load_scenario(SCENARIO)
    base = SCENARIO.parent
    case = json.loads((base / scenario.case).read_text())
    ehr = json.loads((base / scenario.world.ehr).read_text()) if scenario.world.ehr else None
    payer = json.loads((base / scenario.world.payer).read_text()) if scenario.world.payer else None
    return case, WorldSpec.from_bundles(ehr, payer)


class _Slow:
    """A connector whose every call waits ``latency_s`` first (I/O latency); with ``track``, it
    also counts calls that enter while another live driver of the same run is inside one (two
    drivers at once; a SIGKILLed driver's entry is ignored: its process is gone). Tracking
    costs two round trips per call, so only the SIGKILL phase tracks."""

    def __init__(
        self, inner: Any, client: Any, prefix: str, run_id: str, latency_s: float, track: bool
    ):
        self._inner = inner
        self._track = track
        self._client = client
        self._inflight = f"{prefix}:bench:{{{run_id}}}:inflight"
        self._dups = f"{prefix}:bench:duplicate_drives"
        self._latency_s = latency_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._track:
                time.sleep(self._latency_s)
                return attr(*args, **kwargs)
            me = f"{os.getpid()}:{threading.get_ident()}"
            pipe = self._client.pipeline(transaction=False)  # one round trip: enter, look
            pipe.hset(self._inflight, me, 1)
            pipe.hkeys(self._inflight)
            others = [k.decode() for k in pipe.execute()[1] if k.decode() != me]
            if any(_alive(int(other.split(":")[0])) for other in others):
                self._client.incr(self._dups)
            try:
                time.sleep(self._latency_s)
                return attr(*args, **kwargs)
            finally:
                self._client.hdel(self._inflight, me)

        return call


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


class SlowSimulated(SimulatedConnectors):
    """The simulator's connectors, each call ``latency_s`` slower (see :class:`_Slow`)."""

    def __init__(self, latency_s: float, *, track: bool = False) -> None:
        self.latency_s = latency_s
        self.track = track

    def __call__(self, run: RunContext, /) -> World:
        world = super().__call__(run)
        slow = {
            name: _Slow(
                getattr(world, name), run.client, run.prefix, run.run_id, self.latency_s, self.track
            )
            for name in ("ehr", "outreach", "payer", "erp")
        }
        return World(run_id=run.run_id, **slow)


# -- the worker process ---------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> None:
    """One worker process: a pool with the slow connectors until SIGTERM."""
    client = connect(args.url, args.cluster)
    runner = Runner(
        client,
        prefix=args.prefix,
        drive="queue",
        connectors=SlowSimulated(args.latency_ms / 1000, track=args.track),
        lease_ttl_ms=LEASE_TTL_MS,
    )
    pool = runner.worker_pool(
        PoolSettings(
            concurrency=args.concurrency,
            reclaim_idle_ms=2000,
            recover_after_ms=2 * LEASE_TTL_MS,
            sweep_interval_s=0.5,
            block_ms=200,
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: pool.stop())
    pool.run()


def start_worker(
    args: argparse.Namespace,
    url: str,
    cluster: bool,
    prefix: str,
    concurrency: int,
    track: bool = False,
) -> Any:
    cmd = [
        sys.executable, __file__, "--worker", "--url", url, "--prefix", prefix,
        "--concurrency", str(concurrency), "--latency-ms", str(args.latency_ms),
    ]  # fmt: skip
    if cluster:
        cmd.append("--cluster")
    if track:
        cmd.append("--track")
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.DEVNULL)
    _STARTED.append(proc)
    return proc


_STARTED: list[Any] = []
"""Every worker process started, so none outlives the benchmark if it fails."""


def _kill_leftovers() -> None:
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the parent -----------------------------------------------------------------------------


def drive_runs(
    args: argparse.Namespace,
    url: str,
    cluster: bool,
    workers: int,
    kills: int,
    *,
    runs: int | None = None,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Start ``workers`` processes, wait until they report, start the runs and wait until every
    run is at its stop (SIGKILLing a random worker ``kills`` times meanwhile)."""
    client = connect(url, cluster)
    prefix = f"bw{uuid.uuid4().hex[:6]}"
    runner = Runner(client, prefix=prefix, drive="queue")
    runner.work.ensure_group()
    runs = args.runs if runs is None else runs
    concurrency = args.concurrency if concurrency is None else concurrency
    track = kills > 0  # duplicate drives are counted where workers die
    procs = [start_worker(args, url, cluster, prefix, concurrency, track) for _ in range(workers)]
    deadline = time.monotonic() + 300  # a loaded machine imports slowly
    while len(runner.work.stats().workers) < workers:
        if time.monotonic() > deadline:
            for proc in procs:
                proc.kill()
            sys.exit("the workers did not start")
        time.sleep(0.1)
    started_cpu_s = sum(_cpu_s(proc.pid) for proc in procs)  # imports and set-up
    case, world = case_and_world()
    began = time.monotonic()
    run_ids = [
        runner.start("referral_intake", case, requester="sam", world=world).run_id
        for _ in range(runs)
    ]
    kill_every = None
    next_kill = 0.0
    killed = 0
    killed_cpu_s = 0.0
    if kills:
        # Spread the kills over the time the runs take without kills (measured before).
        kill_every = 0.8 * args.expected_s / kills  # kills slow the runs: all land in time
        next_kill = began + kill_every
    open_runs = set(run_ids)
    timeout_at = began + args.timeout
    while open_runs and time.monotonic() < timeout_at:
        open_runs -= stopped(runner, client, open_runs)
        if kill_every is not None and killed < kills and time.monotonic() >= next_kill:
            victim = random.randrange(len(procs))
            killed_cpu_s += _cpu_s(procs[victim].pid)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = start_worker(args, url, cluster, prefix, concurrency, track)
            killed += 1
            next_kill += kill_every
        time.sleep(0.2)
    elapsed = time.monotonic() - began
    cpu_s = sum(_cpu_s(proc.pid) for proc in procs) + killed_cpu_s - started_cpu_s
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    duplicate_effects = 0
    for run_id in run_ids:
        effects = World.attach(client, run_id, prefix=prefix).effects()
        duplicate_effects += len(effects) - len({(e.system, e.idempotency_key) for e in effects})
    stats = runner.work.stats()
    dups = int(client.get(f"{prefix}:bench:duplicate_drives") or 0)
    return {
        "runs": len(run_ids),
        "completed": len(run_ids) - len(open_runs),
        "lost": len(open_runs),
        "elapsed_s": elapsed,
        "runs_per_s": (len(run_ids) - len(open_runs)) / elapsed,
        "duplicate_effects": duplicate_effects,
        "duplicate_drives": dups,
        "reclaimed": stats.reclaimed,
        "kills": killed,
        "cpu_ms_per_run": 1000 * cpu_s / max(1, len(run_ids) - len(open_runs)),
    }


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live worker process has used (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stopped(runner: Runner, client: Any, run_ids: set[str]) -> set[str]:
    """The runs of ``run_ids`` at a stop (their records read in one pipelined round trip, so
    watching costs the machine little CPU)."""
    pipe = client.pipeline(transaction=False)
    ordered = sorted(run_ids)
    parsers = [runner.runs.queue_get(pipe, run_id) for run_id in ordered]
    found = set()
    for run_id, parse, raw in zip(ordered, parsers, pipe.execute(), strict=True):
        record = parse(raw)
        if record is not None and record.status in STOPS:
            found.add(run_id)
    return found


def _line(label: str, workers: int, concurrency: int, got: dict[str, Any]) -> str:
    return (
        f"{label}: {workers} worker(s) x {concurrency} slots: {got['completed']}/{got['runs']} "
        f"runs in {got['elapsed_s']:.1f} s = {got['runs_per_s']:.2f} runs/s, worker CPU "
        f"{got['cpu_ms_per_run']:.0f} ms/run (lost {got['lost']}; load {_load()})"
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def scaling(args: argparse.Namespace, url: str) -> None:
    """One worker at concurrency 1, then at ``--concurrency``: with the I/O overlapped the
    second is ~concurrency times faster (2 x concurrency runs each, so the slots stay full)."""
    runs = 2 * args.concurrency
    rates = {}
    for concurrency in (1, args.concurrency):
        got = drive_runs(args, url, False, 1, kills=0, runs=runs, concurrency=concurrency)
        rates[concurrency] = got["runs_per_s"]
        print(_line("one Redis", 1, concurrency, got), flush=True)
    print(
        f"one Redis: 1 worker, concurrency {args.concurrency} / concurrency 1 = "
        f"{rates[args.concurrency] / rates[1]:.2f}x (I/O overlapped: ~{args.concurrency}x)",
        flush=True,
    )


def measure(args: argparse.Namespace, url: str, cluster: bool, label: str) -> None:
    rates: dict[int, float] = {}
    for workers in (1, 2, 4):
        got = drive_runs(args, url, cluster, workers, kills=0)
        rates[workers] = got["runs_per_s"]
        print(_line(label, workers, args.concurrency, got), flush=True)
        if workers == 4 and not cluster:
            args.expected_s = got["elapsed_s"]
    print(f"{label}: 4 workers / 1 worker = {rates[4] / rates[1]:.2f}x (target >= 3.5)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900.0, help="per measurement, seconds")
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--cluster-url", help="a node of your Redis Cluster (default: start a 3-master one)"
    )
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster phase")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cluster", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--track", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    print(
        f"{args.runs} referral_intake runs, {args.latency_ms:g} ms per connector call, "
        f"concurrency {args.concurrency}, {os.cpu_count()} CPUs, load {_load()}",
        flush=True,
    )
    args.expected_s = 60.0

    def run_all(url: str) -> None:
        scaling(args, url)
        measure(args, url, False, "one Redis")
        with contextlib.ExitStack() as stack:
            cluster_url = args.cluster_url
            if cluster_url is None and not args.no_cluster:
                cluster_url = stack.enter_context(redis_cluster(server_binary()))
            if cluster_url is not None:
                measure(args, cluster_url, True, "3-master cluster")
        got = drive_runs(args, url, False, 4, kills=args.kills)
        print(f"SIGKILLed a worker {got['kills']} times ({got['elapsed_s']:.1f} s; load {_load()})")
        print(
            f"runs {got['runs']} completed {got['completed']} lost {got['lost']} "
            f"duplicate_effects {got['duplicate_effects']} duplicate_drives "
            f"{got['duplicate_drives']} reclaimed {got['reclaimed']}"
        )

    try:
        if args.redis_url:
            run_all(args.redis_url)
        else:
            with local_server() as url:
                run_all(url)
    finally:
        _kill_leftovers()


if __name__ == "__main__":
    main()
