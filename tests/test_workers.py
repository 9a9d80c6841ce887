"""The worker pool on Redis Streams: queue-mode runners enqueue, workers drive.

Coalesced wake-ups, a pool driving started and decided runs, reclaim of a dead worker's
messages, dead letters (a message begun too often; a quarantined run) and their retry, and
SIGTERM draining a real ``carebound worker`` process. All on the real test Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import Approve, Runner
from carebound.engine.pool import PoolSettings, WorkerPool
from carebound.state.keys import lease_key
from carebound.state.work_queue import GROUP, WorkQueue
from carebound.tools.connectors import WorldSpec
from tests.isolation_agents import (
    AGENTS,
    CALLS_FILE_VAR,
    POISON_FILE_VAR,
    SLOW_S_VAR,
    isolation_pack,
)

PROJECT = Path(__file__).resolve().parents[1]
ROLE = "intake_coordinator"


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.02)


@contextlib.contextmanager
def pool_running(runner: Runner, **settings: Any) -> Iterator[WorkerPool]:
    """A worker pool of ``runner`` in a thread, drained on exit."""
    options: dict[str, Any] = {"concurrency": 2, "sweep_interval_s": 0.1, "block_ms": 100}
    pool = runner.worker_pool(PoolSettings(**{**options, **settings}))
    thread = threading.Thread(target=pool.run, daemon=True)
    thread.start()
    try:
        yield pool
    finally:
        pool.stop()
        thread.join(30)
        assert not thread.is_alive(), "the pool did not drain"


def world_of(case: Any) -> Any:
    """The simulated world of ``case``: its resources in the EHR, no scripted replies."""
    return WorldSpec.from_bundles(case, None)


def _approve(runner: Runner, approval_id: str) -> Any:
    view = runner.approval(approval_id)
    decision = Approve(reviewer="casey", role=ROLE, args_hash=view.request.args_hash)
    return runner.decide(approval_id, decision)


def test_wake_ups_of_one_run_coalesce_into_one_message(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    work = WorkQueue(redis_client, prefix=key_prefix)
    work.ensure_group()
    first = work.enqueue("r1", "start")
    assert first is not None
    assert work.enqueue("r1", "event") is None  # waiting already: folded into it
    assert work.enqueue("r2", "timer") is not None
    assert redis_client.xlen(work.stream) == 2
    taken = work.read("w1", count=10, block_ms=10)
    assert [(m.run_id, m.why) for m in taken] == [("r1", "start"), ("r2", "timer")]
    assert work.begin(taken[0]) == 1
    # Begun: a wake-up during the drive is a new message, not lost in the one being driven.
    assert work.enqueue("r1", "event") is not None
    stats = work.stats()
    assert (stats.enqueued, stats.coalesced, stats.depth, stats.pending) == (3, 1, 3, 2)
    assert work.ack(taken[0]) and not work.ack(taken[0])
    assert work.stats().depth == 2 and work.stats().done == 1
    fields = redis_client.xrange(work.stream)[0][1]
    assert set(fields) == {b"run", b"why"}  # ids only, never PHI


def test_queue_mode_start_and_decide_return_at_once_and_the_pool_drives(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner(drive="queue")
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "running" and view.pending is None  # stored, not driven
    assert runner.work.stats().depth == 1
    with pool_running(runner):
        wait_for(lambda: runner.get(view.run_id).status == "paused", what="the run to park")
        wait_for(lambda: runner.work.stats().depth == 0, what="the message to be acked")
        pending = runner.get(view.run_id).pending
        assert pending is not None
        approval_id = pending.request.approval_id
        decided = _approve(runner, approval_id)
        assert decided.outcome == "decided"
        assert runner.pending(role=ROLE) == []  # off the inbox at once
        moved = runner.wait(view.run_id, past=approval_id, timeout_s=20)
    assert moved.status == "waiting"
    decisions = [e for e in runner.audit(view.run_id) if e.action == "decision"]
    assert len(decisions) == 1  # audited once, by the worker that drove it
    assert runner.verify(view.run_id).ok
    stats = runner.work.stats()
    assert stats.done == 2 and stats.depth == 0 and stats.dead_letters == 0


def test_an_inline_runner_has_no_pool(make_runner: Any) -> None:
    from carebound import RunStateError

    with pytest.raises(RunStateError, match="drive='queue'"):
        make_runner().worker_pool()


def test_a_dead_workers_message_is_reclaimed(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner(drive="queue")
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    runner.work.ensure_group()
    # A worker reads the message and dies before acknowledging it.
    assert [m.run_id for m in runner.work.read("dead-worker", block_ms=10)] == [view.run_id]
    with pool_running(runner, reclaim_idle_ms=200) as pool:
        wait_for(lambda: runner.get(view.run_id).status == "paused", what="the reclaimed run")
        wait_for(lambda: runner.work.stats().depth == 0, what="the message to be acked")
    assert pool.report.reclaimed == 1
    assert runner.work.stats().reclaimed == 1


def test_a_message_begun_too_often_is_dead_lettered_and_retried(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner(drive="queue")
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    runner.work.ensure_group()
    message = runner.work.read("dying-worker", block_ms=10)[0]
    for _ in range(3):  # three workers began it and died mid-drive
        runner.work.begin(message)
    with pool_running(runner, reclaim_idle_ms=50, max_tries=3):
        wait_for(lambda: runner.work.stats().dead_letters == 1, what="the dead letter")
        assert runner.get(view.run_id).status == "running"  # not driven: it is a dead letter
        (dead,) = runner.work.dead_letters()
        assert dead.run_id == view.run_id and dead.tries == 4 and "4 times" in dead.reason
        assert runner.retry_dead_letter(dead)
        assert not runner.retry_dead_letter(dead)  # retried once only
        wait_for(lambda: runner.get(view.run_id).status == "paused", what="the retried run")
    stats = runner.work.stats()
    assert (stats.dead_lettered, stats.retried, stats.dead_letters) == (1, 1, 0)


def test_a_run_that_keeps_failing_is_quarantined_dead_lettered_and_retried(
    redis_client: redis.Redis, key_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    demo_case: Any,
) -> None:  # fmt: skip
    poison = tmp_path / "poison"
    monkeypatch.setenv(POISON_FILE_VAR, str(poison))
    runner = Runner(
        redis_client, prefix=key_prefix, agents=AGENTS, policy=isolation_pack(), drive="queue"
    )
    view = runner.start("poison", demo_case, requester="sam", world=world_of(demo_case))
    with pool_running(runner, reclaim_idle_ms=50):
        wait_for(lambda: runner.get(view.run_id).status == "waiting", what="the wait")
        poison.touch()
        assert runner.deliver(f"poke:{view.run_id}") == [view.run_id]
        wait_for(lambda: runner.work.stats().dead_letters == 1, what="the dead letter")
        assert runner.get(view.run_id).status == "quarantined"
        (dead,) = runner.work.dead_letters()
        assert "quarantined" in dead.reason and "Jane" not in dead.reason  # no PHI
        poison.unlink()
        assert runner.retry_dead_letter(dead)  # released from the quarantine, driven again
        wait_for(lambda: runner.get(view.run_id).status == "completed", what="the retried run")
    assert view.run_id not in runner.quarantined()


# -- a real `carebound worker` process ------------------------------------------------------


def worker_process(url: str, prefix: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """``carebound worker ARGS`` in a child process that knows the test agents."""
    environ = {
        **os.environ,
        "CAREBOUND_REDIS_URL": url,
        "CAREBOUND_PREFIX": prefix,
        "CAREBOUND_DRIVE": "queue",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pool_worker", "worker", *args],
        cwd=PROJECT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def calls_of(path: Path) -> list[tuple[str, int]]:
    """The slow connector's log: (start|end, pid) per line."""
    lines = path.read_text().split("\n") if path.exists() else []
    return [(p[0], int(p[1])) for p in (line.split() for line in lines) if p]


def test_sigterm_drains_the_worker(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, demo_case: Any,
) -> None:  # fmt: skip
    calls = tmp_path / "calls"
    monkeypatch.setenv(CALLS_FILE_VAR, str(calls))
    runner = Runner(redis_client, prefix=key_prefix, agents=AGENTS, policy=isolation_pack())
    held = [
        runner.start("slow_held", demo_case, requester="sam", world=world_of(demo_case))
        for _ in "ab"
    ]
    queued = Runner(
        redis_client, prefix=key_prefix, agents=AGENTS, policy=isolation_pack(), drive="queue"
    )
    for view in held:
        assert view.pending is not None
        _approve(queued, view.pending.request.approval_id)
    assert queued.work.stats().depth == 2
    worker = worker_process(
        redis_url, key_prefix, "--concurrency", "1", "--interval", "0.2",
        **{CALLS_FILE_VAR: str(calls), SLOW_S_VAR: "1.5"},
    )  # fmt: skip
    try:
        wait_for(lambda: ("start", worker.pid) in calls_of(calls), what="the first fax")
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    assert calls_of(calls) == [("start", worker.pid), ("end", worker.pid)]  # the step finished
    statuses = sorted(runner.get(v.run_id).status for v in held)
    assert statuses == ["completed", "paused"]  # one drove to its end, one left for others
    for view in held:
        assert not redis_client.hget(lease_key(key_prefix, view.run_id), "owner")  # released
    stats = queued.work.stats()
    assert stats.depth == 1 and stats.pending == 0 and stats.workers == []  # left, untouched
    assert redis_client.xinfo_groups(queued.work.stream)[0]["name"].decode() == GROUP
    assert "1 drives" in out


def test_two_threads_of_one_runner_never_hold_one_runs_lease_at_once(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    # A lease is re-entrant for its owner; a worker's slots (or a web server's requests) are
    # threads of one Runner, so the owner is the Runner *and* the thread.
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    trips = runner._core.trips
    first = trips.take_lease(view.run_id, cold=False)
    other: list[Any] = []
    thread = threading.Thread(
        target=lambda: other.append(trips.take_lease(view.run_id, cold=False))
    )
    thread.start()
    thread.join()
    assert first.lease is not None
    assert other[0].lease is None  # busy: held by the first thread
    again = trips.take_lease(view.run_id, cold=False)
    assert again.lease is not None and again.lease.token == first.lease.token  # its own, extended


def test_worker_status_dead_and_retry_on_the_command_line(
    env: str, redis_client: redis.Redis, demo_case: Any, demo_world: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.test_cli import cli, cli_json

    runner = Runner(redis_client, prefix=env, drive="queue")
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    status = cli_json("worker", "status")
    assert (status["depth"], status["waiting"], status["pending"]) == (1, 1, 0)
    assert status["oldest_age_s"] >= 0 and status["workers"] == []
    message = runner.work.read("dead-worker", block_ms=10)[0]
    assert runner.work.dead_letter(message, reason="begun 6 times", tries=6)
    (dead,) = cli_json("worker", "dead")
    assert (dead["run_id"], dead["tries"], dead["reason"]) == (view.run_id, 6, "begun 6 times")
    assert "name the dead letters" in cli("worker", "retry", code=2).stderr
    assert "no dead letter nope" in cli("worker", "retry", "nope", code=2).stderr
    assert cli_json("worker", "retry", view.run_id) == {"retried": [view.run_id]}
    status = cli_json("worker", "status")
    assert (status["depth"], status["dead_lettered"], status["retried"]) == (1, 1, 1)
    assert status["dead_letters"] == 0
    with pool_running(runner, concurrency=3):
        wait_for(lambda: runner.get(view.run_id).status == "paused", what="the retried run")
        wait_for(lambda: bool(cli_json("worker", "status")["workers"]), what="the worker")
        (worker,) = cli_json("worker", "status")["workers"]
        assert worker["slots"] == 3 and worker["busy"] + worker["free"] == 3
    assert "queue depth 0" in cli("worker", "status").stdout
    monkeypatch.setenv("CAREBOUND_DRIVE", "sideways")
    assert "CAREBOUND_DRIVE='sideways' is not a drive mode" in cli("worker", code=2).stderr


def test_a_message_done_already_is_not_begun_again(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    # A message reclaimed twice (or late) reaches a slot after another slot finished it: it is
    # not begun (and so not driven) again.
    work = WorkQueue(redis_client, prefix=key_prefix)
    work.ensure_group()
    work.enqueue("r1", "start")
    (message,) = work.read("w1", block_ms=10)
    assert work.begin(message) == 1
    assert work.dead_letter(message, reason="test", tries=1)
    assert work.begin(message) == 0
    work.enqueue("r2", "start")
    (other,) = work.read("w1", block_ms=10)
    assert work.begin(other) == 1 and work.ack(other)
    assert work.begin(other) == 0
