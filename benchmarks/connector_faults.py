"""Referral intake runs against a real FHIR server through a fault-injecting proxy.

What it covers: each run is the ``referral_intake`` agent on a referral missing its progress
note, whose referring practitioner is on file with only a FHIR endpoint. Its EHR is the ``/ehr``
base of the real test server (testing/fhir-server) over FHIR REST (``RestEHR``: reads, searches,
conditional creates, Task status updates), and its document request goes out as a Da Vinci CDex
Task (``CdexOutreach``) to the ``/office`` base; both through ``carebound.testing.FaultProxy``
(seeded drops, delays, 503s, 429s, and resets after the server did the work), both behind
``Resilience`` (retries, the Redis breakers ``ehr`` and ``office``). The office's reply is found
by polling through the proxy in ``Runner.sweep``. The benchmark plays the office (completes each
Task with a DocumentReference, straight on the server) and approves the holds the runs park on.
Part-way through, the server is killed for a while (runs park in ``waiting``) and started again
(they resume). The payer and ERP are the simulator (the case needs no payer). All runs share the
seeded chart (one patient, one referral Task). The runs, their retry timers and both breakers
read one virtual clock, which the driver moves to the next due timer each round, so the result
does not depend on how fast the machine is.

It prints, last, one line::

    runs N completed N lost 0 duplicate_resources 0 parked_while_down K resumed K

``lost``: runs that did not end ``completed``; ``duplicate_resources``: effect identifiers
(``urn:carebound:effect``) that more than one resource on the server carries (every Task,
Communication and DocumentReference of the EHR and every Task of the office, read back from the
server), plus each run's sends searched by identifier; ``parked``: runs that waited on a system
that was down (an ``outage`` audit event); ``resumed``: of those, runs that completed.
Before it, runs/s of the same flow with no faults at 0 ms and 50 ms added latency, against the
same flow with the simulated outreach (the baseline, measured in the same run).

Usage::

    python benchmarks/connector_faults.py [--runs 100] [--seed 7] [--redis-url URL]

Needs node (testing/fhir-server); a throwaway Redis is started unless --redis-url is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from benchmarks._local_server import local_server  # noqa: E402
from carebound import Approve, Runner, VirtualClock  # noqa: E402
from carebound.state.breaker import BreakerStore  # noqa: E402
from carebound.state.runs import FINAL_STATUSES  # noqa: E402
from carebound.testing import FaultProxy, FaultSchedule  # noqa: E402
from carebound.tools.connectors import Connectors, RunContext  # noqa: E402
from carebound.tools.connectors import WorldSpec as Spec  # noqa: E402
from carebound.tools.connectors.config import EhrConfig, OfficeConfig  # noqa: E402
from carebound.tools.connectors.fhir_rest import build_ehr  # noqa: E402
from carebound.tools.connectors.fhir_world import FhirBases, seed_world  # noqa: E402
from carebound.tools.connectors.outreach_channels import (  # noqa: E402
    EFFECT_ID_SYSTEM,
    build_outreach,
)
from carebound.tools.connectors.simulated import SimulatedConnectors  # noqa: E402
from carebound.tools.connectors.simulated import World as SimWorld  # noqa: E402
from tests.fhir_server import FhirServerProcess, node_ready  # noqa: E402
from tests.test_outreach_cdex import complete_task  # noqa: E402

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
AGENT = "referral_intake"
FAULTS = {"drop": 0.04, "delay": 0.05, "error_503": 0.08, "too_many": 0.04, "reset": 0.05}
"""Per-request fault rates (the rest pass). No ``error_500``: a 500 is a refusal, not retried."""


def _case() -> dict[str, Any]:
    case = json.loads((PROJECT / "scenarios" / "cases" / "chase_no_note.json").read_text())
    for entry in case["entry"]:
        if entry["resource"]["resourceType"] == "Practitioner":
            entry["resource"]["telecom"] = [{"system": "url", "value": "https://office.test/fhir"}]
    return dict(case)


CASE = _case()


class HybridConnectors:
    """The runs' connectors: outreach by CDex to ``office``; the EHR over FHIR REST when
    ``ehr`` is given (else simulated); simulated payer and ERP."""

    def __init__(self, office: str, clock: VirtualClock, ehr: Any = None) -> None:
        self.config = OfficeConfig.model_validate({"cdex": {
            "base_url": office,
            "retry": {"attempts": 4, "backoff_s": 0.01, "cap_s": 30, "jitter_s": 0.01},
            "breaker": {"failure_threshold": 5, "reset_timeout_s": 30},
            "timeouts": {"connect_s": 1, "read_s": 2},
        }})  # fmt: skip
        self.clock = clock
        self.ehr = ehr
        self.simulated = SimulatedConnectors()

    def __call__(self, run: RunContext, /) -> Connectors:
        world = self.simulated(run)
        outreach = build_outreach(self.config, run, clock=self.clock.now)
        ehr = self.ehr if self.ehr is not None else world.ehr
        return Connectors(ehr=ehr, payer=world.payer, erp=world.erp, outreach=outreach)

    def seed_world(self, run: RunContext, spec: Spec, /) -> None:
        self.simulated.seed_world(run, spec)


def _runner(client: redis.Redis, office: str | None, ehr: str | None = None) -> Runner:
    """A Runner whose runs reach the office at ``office`` (None: the simulator throughout) and
    the EHR at ``ehr`` over FHIR REST (None: the simulated EHR)."""
    clock = VirtualClock(MONDAY)
    prefix = f"bench-faults-{uuid.uuid4().hex[:6]}"
    if office is None:
        return Runner(client, prefix=prefix, clock=clock)
    rest_ehr = None
    if ehr is not None:
        config = EhrConfig.model_validate({
            "base_url": ehr,
            "retry": {"attempts": 4, "backoff_s": 0.01, "cap_s": 30, "jitter_s": 0.01},
            "breaker": {"failure_threshold": 5, "reset_timeout_s": 30},
            "timeouts": {"connect_s": 1, "read_s": 2},
        })  # fmt: skip
        # The breaker reads the runs' clock: its cool-down and the parked runs' retry timers
        # are on one (virtual) clock, however fast or slow the machine drives the rounds.
        rest_ehr = build_ehr(config, breakers=BreakerStore(client, prefix=prefix), clock=clock.now)
    return Runner(
        client,
        prefix=prefix,
        clock=clock,
        connectors=HybridConnectors(office, clock, rest_ehr),
    )


def _tasks(server: str, params: dict[str, str]) -> list[dict[str, Any]]:
    bundle = httpx.get(f"{server}/office/Task", params={**params, "_count": "1000"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _play_office(server: str) -> None:
    """Complete every Task still ``requested`` on the server (straight, not via the proxy)."""
    for task in _tasks(server, {"status": "requested"}):
        complete_task(f"{server}/office", f"Task/{task['id']}")


def _approve_holds(runner: Runner) -> None:
    for view in runner.pending(limit=200):
        reviewer = "jordan" if view.required_role == "supervisor" else "casey"
        if view.required_role not in ("intake_coordinator", "supervisor"):
            reviewer = "robin"
        decision = Approve(
            reviewer=reviewer, role=view.required_role, args_hash=view.request.args_hash
        )
        runner.decide(view.request.approval_id, decision)


def _drive(runner: Runner, run_ids: list[str], server: str | None, rounds: int = 400) -> None:
    """Move the runs on until they end: play the office, approve holds, let time pass."""
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    for _ in range(rounds):
        if server is not None:
            _play_office(server)
        _approve_holds(runner)
        runner.sweep()
        views = [runner.get(r) for r in run_ids]
        open_ = [v for v in views if v.status not in FINAL_STATUSES]
        if not open_:
            return
        if server is None:  # the simulator: replies come on its virtual clock
            for v in open_:
                outreach = SimWorld.attach(runner.client, v.run_id, prefix=runner.prefix).outreach
                for inbound in outreach.due_replies(clock.now()):
                    payload = inbound.model_dump(mode="json")
                    match = f"request:{inbound.request_id}"
                    runner.deliver(match, payload, event_id=inbound.inbound_id)
        dues = [v.record.wait_until for v in open_ if v.record.wait_until]
        clock.advance_to(min(dues) if dues else clock.now() + dt.timedelta(minutes=1))
        clock.advance(dt.timedelta(seconds=1))


def _start(runner: Runner, spec: Spec) -> str:
    return runner.start(AGENT, CASE, requester="sam", world=spec).run_id


def throughput(client: redis.Redis, runs: int, proxy: str | None, server: str | None) -> float:
    """Runs per second, start to completion, of ``runs`` runs (``proxy`` None: simulated)."""
    if proxy is None:
        runner = _runner(client, None)
    else:
        runner = _runner(client, f"{proxy}/office", f"{proxy}/ehr")
    spec = Spec.from_bundles(CASE, None, _replies() if proxy is None else [])
    began = time.perf_counter()
    ids = [_start(runner, spec) for _ in range(runs)]
    _drive(runner, ids, server)
    elapsed = time.perf_counter() - began
    done = sum(runner.get(r).status == "completed" for r in ids)
    if done != runs:
        print(f"  warning: {runs - done} of {runs} runs did not complete", file=sys.stderr)
    return runs / elapsed


def _replies() -> list[Any]:
    from carebound.tools.connectors import ReplyScript, ScriptedDocument

    note = ScriptedDocument(code="11506-3", display="Progress note",
                            text="Progress note. Assessment and plan: stable angina.",
                            date=dt.date(2026, 2, 20))  # fmt: skip
    return [ReplyScript(after=dt.timedelta(hours=1), documents=[note])]


def under_faults(client: redis.Redis, fhir: FhirServerProcess, runs: int, seed: int) -> str:
    """The fault run; returns the summary line."""
    schedule = FaultSchedule(seed=seed, rates=FAULTS, delay_s=0.05, retry_after_s=0)
    with FaultProxy(fhir.url, schedule) as proxy:
        runner = _runner(client, f"{proxy.url}/office", f"{proxy.url}/ehr")
        spec = Spec.from_bundles(CASE, None)
        ids: list[str] = []
        down_from, down_to = runs * 2 // 5, runs * 3 // 5
        for n in range(runs):
            if n == down_from:
                fhir.kill()
            if n == down_to:
                fhir.start()
            ids.append(_start(runner, spec))
        parked = [r for r in ids if _waited_on_office(runner, r)]
        _drive(runner, ids, fhir.url)
        views = {r: runner.get(r) for r in ids}
        completed = sum(v.status == "completed" for v in views.values())
        duplicates = _duplicates(fhir.url, views.values())
        resumed = sum(views[r].status == "completed" for r in parked)
        faults = sum(1 for entry in proxy.log if str(entry.fault) != "pass")
        print(f"  {len(proxy.log)} requests through the proxy, {faults} faulted; server down "
              f"for runs {down_from}..{down_to - 1}", file=sys.stderr)  # fmt: skip
    return (f"runs {runs} completed {completed} lost {runs - completed} duplicate_resources "
            f"{duplicates} parked_while_down {len(parked)} resumed {resumed}")  # fmt: skip


def _waited_on_office(runner: Runner, run_id: str) -> bool:
    return any(
        e.action == "event" and e.detail.get("kind") == "outage"
        for e in runner.audit_log.events(run_id)
    )


def _duplicates(server: str, views: Any) -> int:
    """Effect identifiers that more than one resource on the server carries."""
    seen: Counter[str] = Counter()
    for base, kind in (("ehr", "Task"), ("ehr", "Communication"), ("ehr", "DocumentReference"),
                       ("office", "Task")):  # fmt: skip
        for resource in _all(f"{server}/{base}/{kind}"):
            for ident in resource.get("identifier") or []:
                if ident.get("system") == EFFECT_ID_SYSTEM:
                    seen[f"{base}:{kind}:{ident.get('value')}"] += 1
    dupes = sum(1 for n in seen.values() if n > 1)
    for view in views:  # and each run's sends, searched on the server by their identifier
        for entry in view.effects:
            if entry.tool == "send_request_attempt":
                found = _tasks(server, {"identifier": f"{EFFECT_ID_SYSTEM}|{entry.key}"})
                dupes += len(found) > 1
    return dupes


def _all(url: str) -> list[dict[str, Any]]:
    """Every resource a search returns, following its ``next`` links."""
    found: list[dict[str, Any]] = []
    next_url: str | None = f"{url}?_count=1000"
    while next_url:
        bundle = httpx.get(next_url).json()
        found += [e["resource"] for e in bundle.get("entry", [])]
        next_url = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"),
                        None)  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--speed-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url")
    args = parser.parse_args(argv)
    reason = node_ready()
    if reason is not None:
        print(f"cannot start the FHIR test server: {reason}", file=sys.stderr)
        return 2
    fhir = FhirServerProcess(persist=Path(tempfile.mkdtemp(prefix="cb-faults-")) / "fhir.json")
    fhir.start()
    try:
        with _redis(args.redis_url) as url:
            client = redis.Redis.from_url(url)
            base = throughput(client, args.speed_runs, None, None)
            print(f"simulated outreach (baseline): {base:.1f} runs/s")
            with httpx.Client() as http:  # the chart every run reads, once, straight
                seed_world(Spec.from_bundles(CASE, None), FhirBases.under(fhir.url), http)
            for latency in (0.0, 0.05):
                rates = {"delay": 1.0} if latency else {}
                schedule = FaultSchedule(seed=args.seed, rates=rates, delay_s=latency)
                with FaultProxy(fhir.url, schedule) as proxy:
                    speed = throughput(client, args.speed_runs, proxy.url, fhir.url)
                print(f"REST EHR + CDex on the real server, {latency * 1000:.0f} ms added latency: "
                      f"{speed:.1f} runs/s ({speed / base:.2f}x the baseline)")  # fmt: skip
            line = under_faults(client, fhir, args.runs, args.seed)
    finally:
        fhir.stop()
    print(line)
    return 0 if " lost 0 duplicate_resources 0 " in line else 1


def _redis(url: str | None) -> Any:
    from contextlib import nullcontext

    return nullcontext(url) if url else local_server()


if __name__ == "__main__":
    sys.exit(main())
