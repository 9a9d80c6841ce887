"""The whole system on a real three-master Redis Cluster (started from redis-server binaries by
the ``cluster_url`` fixture): runs, the inbox, the effect ledger, the audit chain, the work
stream and timers, driven by a worker pool and by the command line."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from redis.cluster import RedisCluster

from carebound import Approve, Runner, VirtualClock
from tests.isolation_agents import isolation_pack, registry
from tests.test_checkpoint_saver import cluster_url  # noqa: F401 (the cluster fixture)
from tests.test_workers import ROLE, pool_running, wait_for, world_of


def test_runs_inbox_ledger_audit_streams_and_timers_on_a_redis_cluster(
    cluster_url: str,  # noqa: F811
    demo_case: Any,
) -> None:
    client = RedisCluster.from_url(cluster_url)
    prefix = f"cbw{uuid.uuid4().hex[:6]}"
    clock = VirtualClock()
    runner = Runner(
        client,  # type: ignore[arg-type]
        prefix=prefix,
        clock=clock,
        agents=registry(),
        policy=isolation_pack(),
        drive="queue",
    )
    try:
        with pool_running(runner, concurrency=3):
            demos = [
                runner.start("demo", demo_case, requester="sam", world=world_of(demo_case))
                for _ in range(4)
            ]
            timer = runner.start("timer", demo_case, requester="sam", world=world_of(demo_case))
            for view in [*demos, timer]:
                wait_for(lambda v=view: runner.get(v.run_id).status in ("paused", "waiting"))
            inbox = runner.pending(role=ROLE, limit=50)
            assert {v.request.run_id for v in inbox} == {v.run_id for v in demos}

            first = demos[0].run_id
            pending = runner.get(first).pending
            assert pending is not None
            hold = pending.request
            decision = Approve(reviewer="casey", role=ROLE, args_hash=hold.args_hash)
            assert runner.decide(hold.approval_id, decision).outcome == "decided"
            moved = runner.wait(first, past=hold.approval_id, timeout_s=30)
            assert moved.status == "waiting"
            assert hold.approval_id not in {v.request.approval_id for v in runner.pending()}
            assert runner.deliver(f"request:{first}:11506-3", {"document": "note"}) == [first]
            wait_for(lambda: runner.get(first).status == "completed", what="the delivered run")

            clock.advance(timedelta(hours=2))  # the pool's sweep fires the due timer
            wait_for(lambda: runner.get(timer.run_id).status == "completed", what="the timer")
            assert "timer" in runner.get(timer.run_id).record.summary
            wait_for(lambda: runner.work.stats().depth == 0, what="the queue to drain")
        (effect,) = runner.ledger.entries(first)
        assert effect.status == "done"
        # Every run's chain verifies, its anchor included. On a cluster the anchor is written
        # in a second step after the append: a late one never moves it back (test_audit_tamper)
        # and a settle is never re-sent for a script new to the servers, which lost the
        # append's reply and with it the anchor (test_pipeline).
        for run_id in [v.run_id for v in demos] + [timer.run_id]:
            assert runner.verify(run_id).ok, runner.verify(run_id).problems
        stats = runner.work.stats()
        assert stats.done >= 8 and stats.dead_letters == 0
        # Each run's keys sit in its own slot (spread over the masters); the work queue's keys
        # share one slot, on purpose.
        slots = defaultdict(set)
        for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            name = key.decode()
            slots[name.split("{", 1)[1].split("}", 1)[0] if "{" in name else name].add(
                client.keyslot(name)
            )
        run_slots = {next(iter(slots[v.run_id])) for v in [*demos, timer]}
        assert all(len(slots[v.run_id]) == 1 for v in [*demos, timer])
        assert len(run_slots) >= 2
        assert len(slots[f"{prefix}:work"]) == 1
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            client.delete(key)
        client.close()


def test_the_command_line_on_a_redis_cluster(
    cluster_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    demo_case: Any,
) -> None:
    from tests.test_cli import cli, cli_json

    prefix = f"cbw{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("CAREBOUND_REDIS_URL", cluster_url)
    monkeypatch.setenv("CAREBOUND_REDIS_CLUSTER", "1")
    monkeypatch.setenv("CAREBOUND_PREFIX", prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    client = RedisCluster.from_url(cluster_url)
    runner = Runner(client, prefix=prefix, drive="queue")  # type: ignore[arg-type]
    view = runner.start("demo", demo_case, requester="sam", world=world_of(demo_case))
    status = cli_json("worker", "status")
    assert status["depth"] == 1 and status["waiting"] == 1
    assert "store: Redis Cluster at" in cli("worker", "status").stderr
    with pool_running(runner):
        wait_for(lambda: runner.get(view.run_id).status == "paused", what="the hold")
    listed = cli_json("inbox")
    assert view.run_id in json.dumps(listed)
    for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
        client.delete(key)
    client.close()
