"""A worker process for the crash tests and the crash soak: it drives demo runs, and it dies.

Run it as::

    python -m tests.crashworker --redis-url URL --prefix P --runs N [--exit-when-done]

It plays every part of a deployment around the runner: the worker (``recover()`` at startup,
then start the runs ``crash0000`` .. and ``recover()`` + ``sweep()`` after every pass), the
reviewer (casey, an intake coordinator, approves each hold; the requester is sam) and the
outside world (the referring office replies to even-numbered runs; odd-numbered runs time
out: their 2-day timer is fired at once). It keeps looping until killed, or with
``--exit-when-done`` until every run ended (exit 0 when all completed, 4 when one ended
otherwise, 3 when nothing moved for ``--stall-s`` seconds: a run was lost).

Test-only kill points (``--kill-at`` or the environment variable ``CRASHWORKER_KILL_AT``,
comma-separated) make the process SIGKILL itself at a precise place, at most once per point
and run across restarts (a Redis ``SET NX`` remembers it)::

    created   Runner.start wrote the run record and took its lease (its first drive has not begun)
    parked    the run is paused on its hold; casey has not decided yet
    decided   the approval store recorded casey's decision; the run was not driven yet
    reserve   the ledger reserved the fax's idempotency key; the connector was not called
    effect    the connector sent the fax; the ledger has not recorded the result
    step      the hold step ran (the approved fax sent, the next plan made) and handed its
              writes to the saver, which sends them with the step's checkpoint: the process
              dies before that round trip, and the step runs again on recovery
    plan      the planner runs after the fax went out, before the run starts waiting
    event     a reply or timer event was queued for the run; the run was not driven yet

The parent side (start a worker forked from a preloaded server, kill it, check every run at
the end) is here too, shared by ``tests/test_crash.py`` and ``benchmarks/crash_soak.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import redis

from carebound import AgentDefinition, AlreadyDecidedError, Approve, Runner
from carebound._agent import AgentContext, Plan, PlannerView, request_match
from carebound.agents.demo import DEMO, NOTE_CODE
from carebound.approvals import DecideStepReply, Decision, run_id_of
from carebound.state.keys import global_key, text
from carebound.state.ledger import EffectLedger
from carebound.state.runs import FINAL_STATUSES, RunStore
from carebound.tools import ToolContext
from carebound.tools.connectors import ConnectorError, WorldSpec
from carebound.tools.connectors.simulated import World

KILL_ENV = "CRASHWORKER_KILL_AT"
KILL_POINTS = ("created", "parked", "decided", "step", "reserve", "effect", "plan", "event")
REQUESTER = "sam"
REVIEWER = "casey"
ROLE = "intake_coordinator"
SEND = "send_document_request"
CASE_FILE = Path(__file__).resolve().parents[1] / "scenarios" / "cases" / "hello_referral.json"
SUMMARIES = {
    True: "progress note received",
    False: "no reply within 2 days; handed to a person",
}
"""The summary a run ends with: replied to (True) or timed out (False)."""

EXIT_DONE, EXIT_STALLED, EXIT_UNFINISHED = 0, 3, 4


def run_ids(count: int) -> list[str]:
    """The ids of the runs a worker with ``--runs count`` starts."""
    return [f"crash{i:04d}" for i in range(count)]


def replied(index: int) -> bool:
    """Whether the office answers run number ``index`` (else its timer fires)."""
    return index % 2 == 0


def ready_key(prefix: str) -> str:
    """The Redis key a worker writes its pid to once it is about to recover and work."""
    return global_key(prefix, "crashworker", "ready")


def hook_key(prefix: str, point: str, run_id: str) -> str:
    """The Redis key that records a kill point fired for a run."""
    return global_key(prefix, "crashhook", point, run_id)


# -- the worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker process does."""

    redis_url: str
    prefix: str
    runs: int
    lease_ttl_ms: int = 500
    kill_at: frozenset[str] = frozenset()
    park_only: bool = False
    exit_when_done: bool = False
    stall_s: float = 5.0
    seed: int | None = None


class KillSwitch:
    """SIGKILLs this process at a named point, once per (point, run) across restarts."""

    def __init__(self, client: redis.Redis, prefix: str, points: frozenset[str]) -> None:
        self._client = client
        self._prefix = prefix
        self._points = points

    def claim(self, point: str, run_id: str) -> bool:
        """Whether this process is to die at ``point`` for ``run_id`` (records that it will)."""
        return point in self._points and bool(
            self._client.set(hook_key(self._prefix, point, run_id), "1", nx=True)
        )

    def fire(self, point: str, run_id: str) -> None:
        """Die here if ``point`` is armed and has not fired for ``run_id`` yet."""
        if self.claim(point, run_id):
            die()


def die() -> None:
    """SIGKILL this process: no cleanup, no finally blocks, no buffers flushed."""
    os.kill(os.getpid(), signal.SIGKILL)


def instrumented_demo(switch: KillSwitch, ledger: EffectLedger) -> AgentDefinition:
    """The demo agent with the ``reserve``, ``effect`` and ``plan`` kill points wired in."""
    send = DEMO.tools[SEND]
    planner = DEMO.planner

    def run_send(ctx: ToolContext, args: Any) -> Any:
        entry = next((e for e in ledger.entries(ctx.run_id) if e.key == ctx.idempotency_key), None)
        if entry is None or entry.status != "reserved":
            raise RuntimeError(f"{SEND} ran without a reserved ledger entry: {entry}")
        switch.fire("reserve", ctx.run_id)
        receipt = send.run(ctx, args)
        switch.fire("effect", ctx.run_id)
        return receipt

    def plan(ctx: AgentContext, view: PlannerView) -> Plan:
        if any(r.tool == SEND for r in view.results) and not view.events:
            switch.fire("plan", ctx.run_id)
        return planner(ctx, view)

    tools = {**DEMO.tools, SEND: dataclasses.replace(send, run=run_send)}
    return dataclasses.replace(DEMO, tools=tools, planner=plan)


def instrument_runner(runner: Runner, switch: KillSwitch) -> None:
    """Wire the ``created``, ``decided``, ``step`` and ``event`` kill points into the runner."""
    create = runner.runs.create
    queue_decide = runner.approvals.queue_decide
    add_event = runner.runs.add_event
    saver = runner._saver  # private: this is test instrumentation
    put_writes, put = saver.put_writes, saver.put
    approved_writes_saved: dict[str, threading.Event] = defaultdict(threading.Event)

    def created(record: Any, **kwargs: Any) -> Any:
        stored = create(record, **kwargs)  # the run, and the lease a start takes with it
        switch.fire("created", record.run_id)
        return stored

    def decided(
        pipe: Any, approval_id: str, decision: Decision, **kwargs: Any
    ) -> Callable[[Any], DecideStepReply]:
        parse = queue_decide(pipe, approval_id, decision, **kwargs)

        def parse_then_die(reply: Any) -> DecideStepReply:
            # the decide round trip is stored (decision, lease, its audit event); not driven
            result = parse(reply)
            if result.outcome == "ok":
                switch.fire("decided", run_id_of(approval_id))
            return result

        return parse_then_die

    def queued(run_id: str, event: Any) -> bool:
        added = add_event(run_id, event)
        if added:
            switch.fire("event", run_id)
        return added

    def writes_saved(
        config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        put_writes(config, writes, task_id, task_path)
        if any(ch == "results" and _sent(v) for ch, v in writes):
            approved_writes_saved[str(config["configurable"]["thread_id"])].set()

    def checkpoint_put(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        run_id = str(config["configurable"]["thread_id"])
        if _sent(checkpoint["channel_values"].get("results")) and switch.claim("step", run_id):
            # The hold step's writes were handed over (held to go with this checkpoint, or
            # sent from LangGraph's pool outside a drive): die before the checkpoint is saved
            # (the first checkpoint that holds the sent fax is the hold step's).
            approved_writes_saved[run_id].wait(10)
            die()
        return put(config, checkpoint, metadata, versions)

    setattr(saver, "put_writes", writes_saved)  # noqa: B010
    setattr(saver, "put", checkpoint_put)  # noqa: B010
    setattr(runner.runs, "create", created)  # noqa: B010 (test instrumentation)
    setattr(runner.approvals, "queue_decide", decided)  # noqa: B010
    setattr(runner.runs, "add_event", queued)  # noqa: B010


def _sent(results: Any) -> bool:
    """Whether a ``results`` channel value holds the approved fax, sent."""
    return isinstance(results, list) and any(
        isinstance(r, dict) and r.get("tool") == SEND and r.get("status") == "executed"
        for r in results
    )


def demo_case() -> dict[str, Any]:
    """The hello referral bundle every run works on."""
    return dict(json.loads(CASE_FILE.read_text(encoding="utf-8")))


def _advance(runner: Runner, config: WorkerConfig, index: int, run_id: str, switch: KillSwitch,
             case: dict[str, Any], world: WorldSpec) -> None:  # fmt: skip
    """Do the one thing that moves ``run_id`` on from outside the runner, if any."""
    record = runner.runs.get(run_id)
    if record is None:
        runner.start("demo", case, requester=REQUESTER, world=world, run_id=run_id)
        return
    if record.status == "paused" and record.pending_approval:
        approval = runner.approval(record.pending_approval)
        if approval.status != "pending":
            return  # decided by an earlier worker that died: recover() drives the run
        switch.fire("parked", run_id)
        if config.park_only:
            return
        decision = Approve(
            reviewer=REVIEWER, role=ROLE, args_hash=approval.request.args_hash, note="crash test"
        )
        with contextlib.suppress(AlreadyDecidedError):  # an earlier worker decided it
            runner.decide(approval.request.approval_id, decision)
    elif record.status == "waiting":
        if replied(index):
            runner.deliver(
                request_match(f"{run_id}:{NOTE_CODE}"),
                {"document": NOTE_CODE, "text": "Progress note. Plan: cardiology referral."},
                event_id=f"reply-{run_id}",
            )
        elif record.wait_until is not None:
            runner.fire_timer(run_id, record.wait_until)


def serve(config: WorkerConfig) -> int:
    """The worker loop. Returns the exit code (only with ``exit_when_done``)."""
    client = redis.Redis.from_url(config.redis_url)
    switch = KillSwitch(client, config.prefix, config.kill_at)
    ledger = EffectLedger(client, prefix=config.prefix)
    runner = Runner(
        client,
        prefix=config.prefix,
        agents={"demo": instrumented_demo(switch, ledger)},
        lease_ttl_ms=config.lease_ttl_ms,
    )
    instrument_runner(runner, switch)
    client.set(ready_key(config.prefix), os.getpid())
    case = demo_case()
    world = WorldSpec.from_bundles(case, None)
    ids = list(enumerate(run_ids(config.runs)))
    order = random.Random(config.seed)
    runner.recover()
    seen: list[tuple[str, str]] | None = None
    last_change = time.monotonic()
    while True:
        if config.seed is not None:
            order.shuffle(ids)
        for index, run_id in ids:
            _advance(runner, config, index, run_id, switch, case, world)
        runner.recover()
        runner.sweep()
        records = [runner.runs.get(run_id) for _, run_id in sorted(ids)]
        state = [(r.status, r.updated_at.isoformat()) if r else ("none", "") for r in records]
        if config.exit_when_done and all(s in FINAL_STATUSES for s, _ in state):
            return EXIT_DONE if all(s == "completed" for s, _ in state) else EXIT_UNFINISHED
        if state != seen:
            seen, last_change = state, time.monotonic()
            continue
        if config.exit_when_done and time.monotonic() - last_change > config.stall_s:
            stuck = {rid: s for (_, rid), (s, _) in zip(sorted(ids), state, strict=True)}
            print(f"crashworker: no progress for {config.stall_s}s: {stuck}", file=sys.stderr)
            return EXIT_STALLED
        time.sleep(0.02)


def parse_args(argv: Sequence[str] | None = None) -> WorkerConfig:
    """Read a :class:`WorkerConfig` from the command line (and ``CRASHWORKER_KILL_AT``)."""
    parser = argparse.ArgumentParser(prog="python -m tests.crashworker", description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--lease-ttl-ms", type=int, default=500)
    parser.add_argument("--kill-at", default=None, help="comma-separated kill points")
    parser.add_argument("--park-only", action="store_true", help="start runs, never decide")
    parser.add_argument("--exit-when-done", action="store_true")
    parser.add_argument("--stall-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None, help="shuffle the work each pass")
    args = parser.parse_args(argv)
    raw = args.kill_at if args.kill_at is not None else os.environ.get(KILL_ENV, "")
    points = frozenset(p.strip() for p in raw.split(",") if p.strip())
    unknown = points - set(KILL_POINTS)
    if unknown:
        parser.error(f"unknown kill points {sorted(unknown)}; known: {', '.join(KILL_POINTS)}")
    return WorkerConfig(
        redis_url=args.redis_url,
        prefix=args.prefix,
        runs=args.runs,
        lease_ttl_ms=args.lease_ttl_ms,
        kill_at=points,
        park_only=args.park_only,
        exit_when_done=args.exit_when_done,
        stall_s=args.stall_s,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m tests.crashworker ...``."""
    return serve(parse_args(argv))


# -- the parent side -----------------------------------------------------------------------


def worker_argv(
    redis_url: str,
    prefix: str,
    runs: int,
    *,
    kill_at: Sequence[str] = (),
    park_only: bool = False,
    exit_when_done: bool = False,
    seed: int | None = None,
) -> list[str]:
    """Command-line arguments for a worker."""
    argv = ["--redis-url", redis_url, "--prefix", prefix, "--runs", str(runs)]
    if kill_at:
        argv += ["--kill-at", ",".join(kill_at)]
    if park_only:
        argv.append("--park-only")
    if exit_when_done:
        argv.append("--exit-when-done")
    if seed is not None:
        argv += ["--seed", str(seed)]
    return argv


def _forked_main(argv: list[str]) -> None:
    sys.exit(main(argv))


def fork_worker(argv: Sequence[str]) -> BaseProcess:
    """Start a worker process forked from a server that imported carebound once.

    A fresh ``python -m tests.crashworker`` spends seconds importing LangGraph; a fork of the
    preloaded server is a new process in milliseconds, so a test can kill and restart dozens.
    The environment is the server's: pass kill points with ``--kill-at``.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", __name__])
    proc = ctx.Process(target=_forked_main, args=(list(argv),), daemon=True)
    proc.start()
    return proc


def wait_ready(client: redis.Redis, prefix: str, proc: BaseProcess, timeout_s: float = 30) -> None:
    """Wait until the worker ``proc`` is set up (imports done, runner built).

    Raises:
        AssertionError: it exited first, or took longer than ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while text(client.get(ready_key(prefix)) or b"") != str(proc.pid):
        if proc.exitcode is not None:
            raise AssertionError(f"worker exited with {proc.exitcode} before it was ready")
        if time.monotonic() > deadline:
            raise AssertionError(f"worker not ready within {timeout_s}s")
        time.sleep(0.005)


def kill_after(proc: BaseProcess, delay_s: float) -> bool:
    """SIGKILL ``proc`` after ``delay_s`` unless it ended by itself; True if it was killed."""
    proc.join(delay_s)
    if proc.exitcode is not None or proc.pid is None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    return True


def killed(exitcode: int | None) -> bool:
    """Whether a process exit code means SIGKILL."""
    return exitcode == -signal.SIGKILL


def run_to_end(argv: Sequence[str], *, timeout_s: float = 60.0, limit: int = 200) -> int:
    """Restart a self-killing worker until it exits by itself; returns how often it died.

    Raises:
        AssertionError: it hung, failed, or kept dying past ``limit`` restarts.
    """
    deaths = 0
    for _ in range(limit):
        proc = fork_worker(argv)
        proc.join(timeout_s)
        if proc.exitcode is None:
            kill_after(proc, 0)
            raise AssertionError(f"worker did not finish within {timeout_s}s")
        if killed(proc.exitcode):
            deaths += 1
            continue
        assert proc.exitcode == EXIT_DONE, f"worker exited with {proc.exitcode}"
        return deaths
    raise AssertionError(f"worker still dying after {limit} restarts")


def fired_hooks(client: redis.Redis, prefix: str) -> dict[str, set[str]]:
    """Kill point -> the runs it fired for."""
    out: dict[str, set[str]] = {}
    for raw in client.scan_iter(match=f"{prefix}:crashhook:*", count=1000):
        _, _, point, run_id = text(raw).split(":")
        out.setdefault(point, set()).add(run_id)
    return out


def statuses(client: redis.Redis, prefix: str, count: int) -> list[str | None]:
    """The status of each run (None: not started)."""
    store = RunStore(client, prefix=prefix)
    out: list[str | None] = []
    for run_id in run_ids(count):
        record = store.get(run_id)
        out.append(record.status if record else None)
    return out


@dataclass(frozen=True)
class RunCheck:
    """What is true of one run at the end, counted at the connector and in the store."""

    run_id: str
    status: str | None
    summary: str
    summary_ok: bool
    effects: int
    """Faxes the outreach connector recorded (one per idempotency key)."""
    attempts: int
    """Send calls the connector received, repeats included."""
    ledger: tuple[str, ...]
    """Status of each effect-ledger entry."""
    audit_ok: bool
    audit_actions: tuple[str, ...]
    registered: bool
    marked: bool
    """Still in the runner's to-drive set."""

    @property
    def lost(self) -> bool:
        """It did not reach ``completed``."""
        return self.status != "completed"

    @property
    def duplicated(self) -> int:
        """Effects beyond the one the run should have caused."""
        return max(0, self.effects - 1)

    def problems(self) -> list[str]:
        """Every way this run is not a clean, completed run with exactly one fax."""
        out = []
        if self.lost:
            out.append(f"status {self.status}")
        if not self.summary_ok:
            out.append(f"summary {self.summary!r}")
        if self.effects != 1:
            out.append(f"{self.effects} faxes at the connector")
        if self.ledger != ("done",):
            out.append(f"ledger {self.ledger}")
        if not self.audit_ok:
            out.append("audit chain does not verify")
        for action in ("create", "hold", "decision", "effect"):
            if self.audit_actions.count(action) != 1:
                out.append(f"{self.audit_actions.count(action)} {action!r} audit events")
        if not self.registered:
            out.append("not in the run registry")
        if self.marked:
            out.append("still marked for driving")
        return out


def check_runs(client: redis.Redis, prefix: str, count: int) -> list[RunCheck]:
    """Check every run a worker with ``--runs count`` was meant to start and finish."""
    runner = Runner(client, prefix=prefix, agents={DEMO.name: DEMO})
    registered = set(runner.runs.all_ids())
    marked = {text(m) for m in client.zrange(global_key(prefix, "drive"), 0, -1)}
    checks = []
    for index, run_id in enumerate(run_ids(count)):
        record = runner.runs.get(run_id)
        try:
            outreach = World.attach(client, run_id, prefix=prefix).outreach
            effects = sum(1 for e in outreach.effects() if e.action == "send")
            attempts = outreach.attempts()
        except ConnectorError:
            effects = attempts = 0
        summary = record.summary if record else ""
        checks.append(
            RunCheck(
                run_id=run_id,
                status=record.status if record else None,
                summary=summary,
                summary_ok=summary == SUMMARIES[replied(index)],
                effects=effects,
                attempts=attempts,
                ledger=tuple(e.status for e in runner.ledger.entries(run_id)),
                audit_ok=bool(record) and runner.verify(run_id).ok,
                audit_actions=tuple(e.action for e in runner.audit(run_id)) if record else (),
                registered=run_id in registered,
                marked=run_id in marked,
            )
        )
    return checks


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` until it holds.

    Raises:
        AssertionError: it did not hold within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
