"""Eight concurrent deciders on one approval, 200 times over: exactly one decision wins.

Each round parks a real demo run (its fax request is held by rule OUT-2 for an intake
coordinator), then eight deciders approve it at the same moment, as casey and jordan in turn.
Every round must end with one ``decided`` outcome, seven ``AlreadyDecidedError`` naming the
winner and the time, one approved record, one ``decision`` audit event and one fax sent.

The deciders are threads sharing one Runner, then eight long-lived processes
(tests/decider_proc.py), each with its own Runner and Redis connection, that meet at a Redis
barrier before deciding.

No deadline here measures speed (the suite runs on busy machines): every wait is on progress.
The threads' barrier and results wait up to ``PROGRESS_S``; the processes' test waits for each
outcome as long as every decider process is alive, and gives up only when one died or no
outcome at all arrived for ``PROGRESS_S``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import (
    AlreadyDecidedError,
    ApprovalView,
    Approve,
    DecideResult,
    DecisionRefusedError,
    PolicyPack,
    Runner,
)
from carebound.guardrails import load_policy_pack
from carebound.tools.connectors import WorldSpec
from carebound.tools.connectors.simulated import World
from tests.decider_proc import (
    ROLE,
    Job,
    Outcome,
    blpop,
    inbox_key,
    observe_atomic_step,
    outcomes_key,
    reviewer_of,
    stop_key,
)

pytestmark = pytest.mark.slow

ROUNDS = 200
DECIDERS = 8
REQUESTER = "alex"  # not a reviewer: separation of duties never refuses casey or jordan
PROGRESS_S = 600
"""Longest stretch with no progress at all (no outcome, no barrier crossed) before a test
gives up: a hang, never a slow machine."""


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    """The default pack, loaded once (the runs pin it at start)."""
    return load_policy_pack("default")


def _park(runner: Runner, case: dict[str, Any], world: WorldSpec) -> ApprovalView:
    view = runner.start("demo", case, requester=REQUESTER, world=world)
    assert view.status == "paused", view.record
    assert view.pending is not None
    assert view.pending.request.tool == "send_document_request"
    assert view.pending.required_role == ROLE
    return view.pending


def _already_message(approval: ApprovalView, by: str, at: str) -> str:
    return f"approval {approval.request.approval_id} was already decided by {by} at {at}"


def _check_round(
    runner: Runner, client: redis.Redis, prefix: str, approval: ApprovalView, winner: str
) -> str:
    """Check the stored state after a round; return the decision time as the losers saw it."""
    approval_id = approval.request.approval_id
    run_id = approval.request.run_id
    stored = runner.approval(approval_id)
    assert stored.status == "approved"
    assert stored.record is not None
    assert stored.record.decided_by == winner
    outreach = World.attach(client, run_id, prefix=prefix).outreach
    assert len(outreach.effects()) == 1, outreach.effects()
    assert outreach.attempts() == 1
    sends = [e for e in runner.ledger.entries(run_id) if e.tool == "send_document_request"]
    assert [e.status for e in sends] == ["done"]
    trail = runner.audit(run_id)
    decisions = [(e.actor.id, e.outcome) for e in trail if e.action == "decision"]
    assert decisions == [(winner, "success")]
    assert [e.outcome for e in trail if e.action == "effect"] == ["success"]
    assert runner.verify(run_id).ok
    assert runner.get(run_id).status == "waiting"
    return stored.record.decided_at.isoformat()


# -- threads -----------------------------------------------------------------------------


def test_eight_threads_decide_one_approval(
    make_runner: Callable[..., Runner],
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: dict[str, Any],
    demo_world: WorldSpec,
    pack: PolicyPack,
) -> None:
    runner = make_runner(policy=pack)
    atomic = observe_atomic_step(runner)
    raced = 0

    def decide(
        approval: ApprovalView, barrier: threading.Barrier, worker: int
    ) -> DecideResult | DecisionRefusedError:
        decision = Approve(
            reviewer=reviewer_of(worker), role=ROLE, args_hash=approval.request.args_hash
        )
        barrier.wait(timeout=PROGRESS_S)
        try:
            return runner.decide(approval.request.approval_id, decision)
        except DecisionRefusedError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=DECIDERS) as pool:
        for _ in range(ROUNDS):
            approval = _park(runner, demo_case, demo_world)
            barrier = threading.Barrier(DECIDERS)
            futures = [pool.submit(decide, approval, barrier, w) for w in range(DECIDERS)]
            results = [f.result(timeout=PROGRESS_S) for f in futures]

            won = [w for w, r in enumerate(results) if isinstance(r, DecideResult)]
            assert len(won) == 1, results
            winner = reviewer_of(won[0])
            result = results[won[0]]
            assert isinstance(result, DecideResult)
            assert result.outcome == "decided"
            assert result.run.status == "waiting"
            decided_at = _check_round(runner, redis_client, key_prefix, approval, winner)
            lost = [r for r in results if not isinstance(r, DecideResult)]
            assert all(isinstance(r, AlreadyDecidedError) for r in lost), lost
            expected = _already_message(approval, winner, decided_at)
            assert [r.message for r in lost] == [expected] * (DECIDERS - 1)
            assert all(isinstance(r, AlreadyDecidedError) and r.decided_by == winner for r in lost)
            inside = sorted(o for a, o in atomic if a == approval.request.approval_id)
            assert inside == ["decided"] * (len(inside) - 1) + ["ok"], inside
            raced += len(inside) - 1
    assert runner.pending(role=ROLE) == []
    # Losers refused by the Runner's first read never reach the script; the proof needs some
    # that did, and were turned away by it.
    assert raced > 0, "no two deciders ever met inside the atomic decide step"


# -- processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deciders:
    """The decider processes and their log files (their stderr)."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def logs_text(self) -> str:
        """The tail of every decider's log, to explain a failure."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in self.logs if p.exists())

    def dead(self) -> list[int]:
        """The workers whose process has exited."""
        return [w for w, p in enumerate(self.procs) if p.poll() is not None]


@pytest.fixture
def deciders(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Deciders]:
    """Eight decider processes for this test's key space."""
    script = Path(__file__).with_name("decider_proc.py")
    found = Deciders([], [tmp_path / f"decider-{w}.log" for w in range(DECIDERS)])
    client = redis.Redis.from_url(redis_url)
    try:
        for worker, log in enumerate(found.logs):
            argv = [sys.executable, str(script), "--redis-url", redis_url, "--prefix", key_prefix]
            argv += ["--worker", str(worker), "--parties", str(DECIDERS)]
            with log.open("wb") as err:
                found.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err))
        yield found
    finally:
        client.set(stop_key(key_prefix), 1)
        stop = Job(stop=True).model_dump_json()
        for worker in range(DECIDERS):
            client.rpush(inbox_key(key_prefix, worker), stop)
        deadline = time.monotonic() + PROGRESS_S
        for proc in found.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        client.close()
    codes = [p.returncode for p in found.procs]
    assert codes == [0] * DECIDERS, found.logs_text()


def _next_outcome(client: redis.Redis, prefix: str, deciders: Deciders) -> Outcome:
    """The next outcome any decider pushed: waits while every decider is alive, up to
    ``PROGRESS_S`` without one."""
    deadline = time.monotonic() + PROGRESS_S
    while (raw := blpop(client, outcomes_key(prefix), 1)) is None:
        dead = deciders.dead()
        assert not dead, f"decider(s) {dead} exited\n{deciders.logs_text()}"
        assert time.monotonic() < deadline, (
            f"no decider answered for {PROGRESS_S}s\n{deciders.logs_text()}"
        )
    return Outcome.model_validate_json(raw)


def test_eight_processes_decide_one_approval(
    make_runner: Callable[..., Runner],
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: dict[str, Any],
    demo_world: WorldSpec,
    pack: PolicyPack,
    deciders: Deciders,
) -> None:
    runner = make_runner(policy=pack)
    ready = [_next_outcome(redis_client, key_prefix, deciders) for _ in range(DECIDERS)]
    assert sorted((o.kind, o.worker) for o in ready) == [("ready", w) for w in range(DECIDERS)]
    raced = 0

    for _ in range(ROUNDS):
        approval = _park(runner, demo_case, demo_world)
        approval_id = approval.request.approval_id
        job = Job(approval_id=approval_id, args_hash=approval.request.args_hash)
        pipe = redis_client.pipeline(transaction=False)
        for worker in range(DECIDERS):
            pipe.rpush(inbox_key(key_prefix, worker), job.model_dump_json())
        pipe.execute()
        outcomes = [_next_outcome(redis_client, key_prefix, deciders) for _ in range(DECIDERS)]

        assert sorted(o.worker for o in outcomes) == list(range(DECIDERS))
        assert {o.approval_id for o in outcomes} == {approval_id}
        won = [o for o in outcomes if o.kind == "decided"]
        assert len(won) == 1, outcomes
        assert won[0].run_status == "waiting"
        winner = won[0].reviewer
        decided_at = _check_round(runner, redis_client, key_prefix, approval, winner)
        lost = [o for o in outcomes if o.kind != "decided"]
        assert {(o.kind, o.code, o.decided_by) for o in lost} == {
            ("already_decided", "already_decided", winner)
        }, lost
        assert {o.message for o in lost} == {_already_message(approval, winner, decided_at)}
        assert won[0].atomic == "ok"
        assert {o.atomic for o in lost} <= {"", "decided"}, lost
        raced += sum(o.atomic == "decided" for o in lost)
    assert runner.pending(role=ROLE) == []
    assert raced > 0, "no two deciders ever met inside the atomic decide step"
