"""Process-figures benchmark: 100,000 audited runs, then ``carebound report`` for 30 days.

1. Appends a synthetic but realistic trail for ``--runs`` runs through the real append path
   (``AuditLog.queue_record``: the same Lua script, hash chain and MAC as every event; one
   pipeline per 500 runs and event position) spread over 30 days: a start, for 60 % of runs a
   hold (8 rules, 3 roles) and a decision (approve / edit / reject, minutes to hours later),
   an effect and the run's completion.
2. Folds the trail into the per-day counters (``KpiStore.catch_up``): events per second.
3. Times the report for the 30 days by rule and by role (fold check + read + build), p50/p95
   over ``--queries`` calls. Baseline, same run: recomputing the same report from the trail
   itself (read every event, fold in memory), once.
4. The cost of keeping the figures on the decide path: ``Runner.decide`` -> next stop p95 on
   parked demo runs, with another process folding continuously vs with nobody folding.

Targets: report p95 <= 50 ms; decide p95 with folding within 10 % of without.

Usage::

    python benchmarks/kpi.py [--redis-url URL] [--runs 100000] [--queries 50] [--decides 200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from _local_server import delete_prefix, local_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carebound import Approve, Runner
from carebound.audit import Actor, AuditLog
from carebound.kpi import REFERRAL_AGENTS, Span, build_report, fold, needed_keys
from carebound.state.kpi import KpiStore
from carebound.state.pipeline import run as run_pipeline
from carebound.tools.connectors import WorldSpec

RULES = ["REF-1", "DOC-1", "DOC-2", "OUT-1", "OUT-2", "REC-3", "REC-4", "BILL-1"]
ROLES = ["intake_coordinator", "billing", "supervisor"]
AGENTS = ["referral_intake", "referral_chaser", "reconciler", "packet_builder"]
FOLD_EVERY_S = 0.5
"""How often the benchmark's folder folds (the worker's sweep does it every --interval, 5 s)."""
CASE = Path(__file__).resolve().parents[1] / "scenarios" / "cases" / "hello_referral.json"


def _events(i: int, end: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """The trail of synthetic run ``i``, as ``AuditLog`` fields (oldest first)."""
    start = end - timedelta(days=i % 30, seconds=rng.randint(0, 80_000))
    agent = AGENTS[i % len(AGENTS)]
    out: list[dict[str, Any]] = [
        dict(time=start, actor=Actor(kind="person", id="clerk"), action="create",
             outcome="success", detail={"agent": agent, "policy": "default@bench"}),
    ]  # fmt: skip
    t = start + timedelta(seconds=30)
    if rng.random() < 0.6:
        rule, role = RULES[i % len(RULES)], ROLES[i % len(ROLES)]
        approval = f"r{i:012x}-1"
        deadline = t + timedelta(hours=8)
        out.append(dict(time=t, actor=Actor(kind="agent", id=agent), action="hold",
                        outcome="held", detail={"tool": "send_document_request",
                        "approval_id": approval, "rule": rule, "role": role,
                        "args_hash": "0" * 64, "deadline": deadline.isoformat()}))  # fmt: skip
        t += timedelta(minutes=rng.lognormvariate(3.5, 1.2))
        kind = rng.choices(["approve", "edit", "reject"], [0.8, 0.12, 0.08])[0]
        out.append(dict(time=t, actor=Actor(kind="person", id="casey", role=role),
                        action="decision", outcome="success", detail={"approval_id": approval,
                        "decision": kind, "outcome": "ok", "role": role,
                        "principal": "casey"}))  # fmt: skip
    t += timedelta(seconds=2)
    out.append(dict(time=t, actor=Actor(kind="agent", id=agent), action="effect",
                    outcome="success", detail={"tool": "send_document_request",
                    "key": f"k{i}", "effect": "external", "decided": "approved"}))  # fmt: skip
    out.append(dict(time=t + timedelta(seconds=1), actor=Actor(kind="agent", id=agent),
                    action="event", outcome="success",
                    detail={"status": "completed", "previous": "running",
                            "agent": agent}))  # fmt: skip
    return out


def append_trail(client: redis.Redis, prefix: str, runs: int, end: datetime) -> float:
    """Append every run's trail; returns events per second."""
    log = AuditLog(client, prefix=prefix)
    rng = random.Random(7)
    total, started = 0, time.perf_counter()
    for first in range(0, runs, 500):
        trails = {f"r{i:012x}": _events(i, end, rng) for i in range(first, min(first + 500, runs))}
        for position in range(max(len(t) for t in trails.values())):
            checks: list[Any] = []

            def fill(
                pipe: Any,
                position: int = position,
                checks: list[Any] = checks,
                trails: dict[str, list[dict[str, Any]]] = trails,
            ) -> None:
                for run_id, trail in trails.items():
                    if position < len(trail):
                        checks.append(log.queue_record(
                            pipe, run_id, once=f"bench:{position}", category="bench",
                            **trail[position],
                        ))  # fmt: skip

            replies = run_pipeline(client, fill)
            assert all(ok(reply) for ok, reply in zip(checks, replies, strict=True))
            total += len(checks)
    return total / (time.perf_counter() - started)


def _pcts(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[94]


def time_reports(store: KpiStore, end: datetime, queries: int) -> dict[str, tuple[float, float]]:
    since = (end - timedelta(days=29)).date()
    out = {}
    for by in ("rule", "role"):
        samples = []
        for _ in range(queries):
            t0 = time.perf_counter()
            store.catch_up()
            report = build_report(store.span(since, end.date()), by=by,  # type: ignore[arg-type]
                                  today=end.date())  # fmt: skip
            samples.append((time.perf_counter() - t0) * 1000)
        assert report["runs"]["started"] > 0
        out[by] = _pcts(samples)
    return out


def baseline_report(client: redis.Redis, prefix: str, end: datetime) -> float:
    """Without the kept counters: read the whole trail and fold it in memory (ms)."""
    t0 = time.perf_counter()
    events = []
    cursor = "-"
    while True:
        batch = client.xrange(f"{prefix}:audit", min=cursor, count=10_000)
        if not batch:
            break
        events += [json.loads(f[b"event"]) for _, f in batch]
        cursor = "(" + batch[-1][0].decode()
    out = fold(events, dict.fromkeys(needed_keys(events)), referral_agents=REFERRAL_AGENTS)
    days: dict[str, dict[str, int]] = {}
    for (day, field), n in out.increments.items():
        days.setdefault(day, {})[field] = days.setdefault(day, {}).get(field, 0) + n
    build_report(Span.of(days), by="rule", today=end.date())
    return (time.perf_counter() - t0) * 1000


def _fold_forever(url: str, prefix: str, stop: Any) -> None:
    store = KpiStore(redis.Redis.from_url(url), prefix=prefix, referral_agents=REFERRAL_AGENTS)
    while not stop.is_set():
        store.catch_up()
        time.sleep(FOLD_EVERY_S)


def decide_p95(url: str, prefix: str, decides: int, *, folding: bool) -> float:
    client = redis.Redis.from_url(url)
    runner = Runner(client, prefix=prefix)
    case = json.loads(CASE.read_text())
    world = WorldSpec.from_bundles(case, None)
    pending = []
    for _ in range(decides):
        view = runner.start("demo", case, requester="ops", world=world)
        assert view.pending is not None
        pending.append(view.pending.request)
    stop = multiprocessing.Event()
    folder = multiprocessing.Process(target=_fold_forever, args=(url, prefix, stop))
    if folding:
        folder.start()
    samples = []
    try:
        for request in pending:
            t0 = time.perf_counter()
            approve = Approve(
                reviewer="casey", role="intake_coordinator", args_hash=request.args_hash
            )
            runner.decide(request.approval_id, approve)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
        if folding:
            folder.join(10)
    return _pcts(samples)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--decides", type=int, default=200)
    args = parser.parse_args()
    with local_server() if args.redis_url is None else _Given(args.redis_url) as url:
        client = redis.Redis.from_url(url)
        prefix = f"bk{uuid.uuid4().hex[:8]}"
        end = datetime.now(UTC).replace(microsecond=0)
        try:
            rate = append_trail(client, prefix, args.runs, end)
            print(f"appended {args.runs:,} runs' events through AuditLog: {rate:,.0f} events/s")
            store = KpiStore(client, prefix=prefix, referral_agents=REFERRAL_AGENTS)
            t0 = time.perf_counter()
            folded = store.catch_up()
            took = time.perf_counter() - t0
            print(f"folded {folded:,} events in {took:.1f} s ({folded / took:,.0f} events/s)")
            timings = time_reports(store, end, args.queries)
            base = baseline_report(client, prefix, end)
            for by, (p50, p95) in timings.items():
                print(f"report 30 days by {by}: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                      f"(target <= 50 ms); recomputing from the trail: {base:,.0f} ms, "
                      f"{base / p95:,.0f}x slower")  # fmt: skip
            without = decide_p95(url, prefix + "d0", args.decides, folding=False)
            with_fold = decide_p95(url, prefix + "d1", args.decides, folding=True)
            print(f"decide -> next stop p95: {without:.2f} ms nobody folding, "
                  f"{with_fold:.2f} ms with a folder running: "
                  f"ratio {with_fold / without:.2f} (target <= 1.10)")  # fmt: skip
        finally:
            for p in (prefix, prefix + "d0", prefix + "d1"):
                delete_prefix(client, p)


class _Given:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
