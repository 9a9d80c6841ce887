"""Failure isolation: a tool that raises anything ends its call as a recorded error, a run
that keeps failing is quarantined, recover() and sweep() never stop for one run, a Runner
holds no connection beyond its calls, and a store that refuses writes says why at once.

Everything runs on real Redis servers; the CLI is the real one (typer's CliRunner), with the
test agents added to its agent registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from carebound import AsyncRunner, Runner, VirtualClock
from carebound._agent import RunEvent
from carebound._errors import StoreUnavailableError, StoreWriteRefusedError
from carebound.cli import app
from carebound.state.keys import global_key, run_key
from carebound.store import StoreSettings, connect
from carebound.tools.connectors import WorldSpec
from tests import isolation_agents
from tests.isolation_agents import AGENTS, PHI_IN_MESSAGE, POISON_FILE_VAR, isolation_pack
from tests.servers import ServerProcess, redis_binary, valkey_binary


@pytest.fixture
def runner(redis_client: redis.Redis, key_prefix: str) -> Iterator[Runner]:
    with Runner(
        redis_client,
        prefix=key_prefix,
        clock=VirtualClock(),
        agents=AGENTS,
        policy=isolation_pack(),
    ) as r:
        yield r


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> Path:
    """The real CLI on the test Redis and key prefix, with the test agents registered."""
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_STORE", "working")
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    monkeypatch.setattr("carebound.agents.registry", isolation_agents.registry)
    poison = tmp_path / "poison"
    monkeypatch.setenv(POISON_FILE_VAR, str(poison))
    return poison


def cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result


def _start(runner: Runner, agent: str, case: dict[str, Any]) -> Any:
    return runner.start(agent, case, requester="sam", world=WorldSpec.from_bundles(case, None))


def _audit_json(runner: Runner, run_id: str) -> str:
    return json.dumps([e.model_dump(mode="json") for e in runner.audit(run_id)])


# -- a tool that raises anything -----------------------------------------------------------


def test_tool_crash_is_a_recorded_error_and_the_run_fails_visibly(
    runner: Runner, demo_case: dict[str, Any], key_prefix: str, redis_client: redis.Redis
) -> None:
    view = _start(runner, "crashy", demo_case)
    assert view.status == "failed"
    assert "crash_fax" in view.record.summary and "RuntimeError" in view.record.summary
    [entry] = view.effects
    assert entry.status == "failed"
    assert entry.error_class == "RuntimeError"
    assert entry.error is not None and "RuntimeError" in entry.error
    [result] = view.results
    assert result.status == "error"
    effect = [e for e in runner.audit(view.run_id) if e.action == "effect"]
    assert len(effect) == 1 and effect[0].outcome == "failed"
    assert effect[0].detail["error_class"] == "RuntimeError"
    # Nothing the connector put in its message reaches the record, ledger or audit trail.
    for text in (view.model_dump_json(), _audit_json(runner, view.run_id)):
        assert "Jane Doe" not in text and "1980-01-02" not in text
    assert redis_client.zscore(global_key(key_prefix, "drive"), view.run_id) is None
    assert runner.verify(view.run_id).ok


def test_connector_crash_in_a_cli_decide_answers_the_runs_true_state(
    runner: Runner, demo_case: dict[str, Any], cli_env: Path
) -> None:
    view = _start(runner, "crashy_held", demo_case)
    assert view.status == "paused" and view.pending is not None
    approval = view.pending.request.approval_id
    result = cli("approve", approval, "--reviewer", "casey", "--role", "intake_coordinator")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "failed" in result.stdout
    after = runner.get(view.run_id)
    assert after.status == "failed"
    assert [e.status for e in after.effects] == ["failed"]
    assert PHI_IN_MESSAGE not in result.stdout + result.stderr


# -- recover() and sweep(): one run never stops the others ------------------------------


def _poison_run(runner: Runner, case: dict[str, Any], poison: Path) -> str:
    """A run whose planner raises when it wakes, left by a process that queued its event and
    died before driving it (so recover() picks it up)."""
    view = _start(runner, "poison", case)
    assert view.status == "waiting"
    poison.touch()
    runner._mark_drive(view.run_id)
    runner.runs.add_event(view.run_id, RunEvent(id="ev-1", kind="event", at=runner.clock.now()))
    return view.run_id


def test_worker_starts_and_fires_timers_despite_poison_runs(
    runner: Runner,
    demo_case: dict[str, Any],
    cli_env: Path,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    two_hours_ago = VirtualClock(datetime.now(UTC) - timedelta(hours=2))
    with Runner(
        redis_client, prefix=key_prefix, clock=two_hours_ago, agents=AGENTS, policy=isolation_pack()
    ) as earlier:  # the worker runs on the real clock: start these within their budgets
        poisoned = _poison_run(earlier, demo_case, cli_env)
        timed = _start(earlier, "timer", demo_case)  # its timer was due an hour ago
    assert timed.status == "waiting"
    # A run whose record cannot be read at all, marked as left mid-drive.
    broken = "rbroken000001"
    redis_client.zadd(global_key(key_prefix, "runs"), {broken: 1})
    redis_client.hset(run_key(key_prefix, broken, "run"), mapping={"run_id": "{not json"})
    redis_client.zadd(global_key(key_prefix, "drive"), {broken: 1})

    result = cli("worker", "--once", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["timers_fired"] == 2  # the poison run's timer fired too; its drive failed
    assert report["runs_failed"] >= 3  # poison at start and at its timer, broken at start...
    assert runner.get(timed.run_id).status == "completed"
    poisoned_view = runner.get(poisoned)
    assert poisoned_view.status == "running"
    assert "RuntimeError" in poisoned_view.record.summary
    assert PHI_IN_MESSAGE not in result.stdout + result.stderr + poisoned_view.record.summary


def test_a_run_that_keeps_failing_is_quarantined_and_shown(
    runner: Runner, demo_case: dict[str, Any], cli_env: Path, redis_client: redis.Redis
) -> None:
    poisoned = _poison_run(runner, demo_case, cli_env)
    healthy = _start(runner, "timer", demo_case)
    reports = [runner.recover_runs() for _ in range(3)]
    assert [r.failed for r in reports] == [[poisoned], [poisoned], [poisoned]]
    assert reports[-1].quarantined == [poisoned]
    view = runner.get(poisoned)
    assert view.status == "quarantined"
    assert "RuntimeError" in view.record.summary
    assert runner.recover_runs().failed == []  # no longer retried
    events = [e for e in runner.audit(poisoned) if e.detail.get("kind") == "quarantined"]
    assert len(events) == 1
    listed = cli("runs", "--status", "quarantined", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [poisoned]
    table = cli("runs")
    assert "quarantined" in table.stdout
    assert runner.get(healthy.run_id).status == "waiting"
    # Once fixed, the run is not stuck: the failure counter resets on a good drive.
    cli_env.unlink()
    assert runner.get(poisoned).record.failures == 3


def test_recover_keeps_going_past_a_failing_run(
    runner: Runner, demo_case: dict[str, Any], cli_env: Path
) -> None:
    poisoned = _poison_run(runner, demo_case, cli_env)
    other = _start(runner, "timer", demo_case)
    runner._mark_drive(other.run_id)
    runner.runs.add_event(other.run_id, RunEvent(id="ev-2", kind="event", at=runner.clock.now()))
    recovered = runner.recover()
    assert recovered == [other.run_id]
    assert runner.get(other.run_id).status == "completed"
    cli_env.unlink()  # the bug is fixed: the next recover drives the run through
    report = runner.recover_runs()
    assert report.recovered == [poisoned] and report.failed == []
    view = runner.get(poisoned)
    assert view.status == "completed" and view.record.failures == 0


def test_a_sweep_fires_every_due_timer_past_a_failing_run(
    runner: Runner, demo_case: dict[str, Any], cli_env: Path
) -> None:
    poisoned = _start(runner, "poison", demo_case)
    healthy = _start(runner, "timer", demo_case)
    cli_env.touch()
    assert isinstance(runner.clock, VirtualClock)
    runner.clock.advance(timedelta(hours=2))
    report = runner.sweep()
    assert report.timers_fired == 2 and report.runs_failed == 1
    assert runner.get(healthy.run_id).status == "completed"
    assert runner.get(poisoned.run_id).record.failures == 1


# -- connections --------------------------------------------------------------------------


def test_a_thousand_runners_on_one_client_hold_no_connections(
    redis_url: str, key_prefix: str, demo_case: dict[str, Any]
) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=20)
    try:
        first = Runner(client, prefix=key_prefix, clock=VirtualClock())
        run = first.start(
            "demo", demo_case, requester="sam", world=WorldSpec.from_bundles(demo_case, None)
        )
        config: Any = {"configurable": {"thread_id": run.run_id}}
        for _ in range(1000):
            with Runner(client, prefix=key_prefix, clock=VirtualClock()) as r:
                # the checkpoint read that starts every drive and every get()
                assert r._saver.get_tuple(config) is not None
        for _ in range(60):  # never closed: still nothing held once its calls are done
            assert Runner(client, prefix=key_prefix).get(run.run_id).status == "paused"
        assert len(client.connection_pool._in_use_connections) <= 2
        first.close()
    finally:
        client.close()


def test_async_runner_closes_its_runner(redis_url: str, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=5)

    async def main() -> None:
        for _ in range(50):
            async with AsyncRunner(Runner(client, prefix=key_prefix)) as r:
                assert await r.pending() == []
                assert (await r.recover_runs()).failed == []

    try:
        asyncio.run(main())
        assert len(client.connection_pool._in_use_connections) <= 1
    finally:
        client.close()


# -- a store that refuses writes ----------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[ServerProcess]:
    binary = redis_binary() or valkey_binary()
    if binary is None:
        pytest.skip("no redis-server or valkey-server")
    server = ServerProcess(binary, appendonly=False)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:  # a server that cannot save would refuse to shut down
            server.proc.kill()
            server.proc.wait()
        server.cleanup()


def _make_misconf(admin: redis.Redis, server: ServerProcess) -> None:
    """The server's data directory vanishes (as a full or failed disk would): its next
    snapshot fails, and it refuses writes (MISCONF)."""
    admin.config_set("save", "3600 1")
    admin.config_set("stop-writes-on-bgsave-error", "yes")
    shutil.rmtree(server.data_dir)
    admin.bgsave()
    deadline = time.monotonic() + 10
    while admin.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "bgsave did not fail"
        time.sleep(0.05)


REFUSALS: dict[str, Any] = {
    "misconf": (_make_misconf, "cannot save to disk"),
    "readonly": (lambda admin, _: admin.replicaof("127.0.0.1", "1"), "read-only replica"),
    "oom": (lambda admin, _: admin.config_set("maxmemory", "1"), "out of memory"),
    "noreplicas": (
        lambda admin, _: admin.config_set("min-replicas-to-write", "1"),
        "not enough replicas",
    ),
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_store_that_refuses_writes_says_so_at_once(
    own_server: ServerProcess, kind: str, demo_case: dict[str, Any]
) -> None:
    admin = redis.Redis.from_url(own_server.url)
    client = redis.Redis.from_url(own_server.url)
    make, words = REFUSALS[kind]
    try:
        make(admin, own_server)
        with Runner(client, prefix="t", clock=VirtualClock()) as r:
            began = time.monotonic()
            with pytest.raises(StoreWriteRefusedError) as caught:
                r.start("demo", demo_case, requester="sam")
            assert time.monotonic() - began < 2
        assert isinstance(caught.value, StoreUnavailableError)
        assert words in caught.value.message
        assert caught.value.hint
    finally:
        admin.close()
        client.close()


def test_cli_names_a_full_disk_with_the_fix(
    own_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    demo_case: dict[str, Any],
) -> None:
    admin = redis.Redis.from_url(own_server.url)
    try:
        _make_misconf(admin, own_server)
    finally:
        admin.close()
    case = tmp_path / "case.json"
    case.write_text(json.dumps(demo_case))
    monkeypatch.setenv("CAREBOUND_REDIS_URL", own_server.url)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    began = time.monotonic()
    result = cli("run", "--agent", "demo", "--case", str(case), "--requester", "sam")
    assert time.monotonic() - began < 5
    assert result.exit_code == 6, result.stdout + result.stderr
    assert "cannot save to disk" in result.stderr
    assert "disk" in result.stderr.split("hint:")[-1]


def test_embedded_server_that_cannot_save_says_so_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_case: dict[str, Any]
) -> None:
    """The embedded server's disk fails under it: the next command says so at once (it used to
    wait 15 s for a PING the server refuses, then report that it does not answer)."""
    home = tmp_path / ("d" * 120) / "home"  # a long path: it listens on TCP, not in home
    store = connect(StoreSettings(home=home))
    admin = redis.Redis.from_url(store.url)
    try:
        kept = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
        shutil.rmtree(home)  # its data directory vanishes under it, as a failed disk would
        home.mkdir()
        for name, data in kept.items():
            (home / name).write_bytes(data)
        admin.config_set("save", "3600 1")
        admin.bgsave()
        deadline = time.monotonic() + 10
        while admin.info("persistence")["rdb_last_bgsave_status"] != "err":
            assert time.monotonic() < deadline, "bgsave did not fail"
            time.sleep(0.05)
        case = tmp_path / "case.json"
        case.write_text(json.dumps(demo_case))
        monkeypatch.delenv("CAREBOUND_REDIS_URL", raising=False)
        monkeypatch.setenv("CAREBOUND_HOME", str(home))
        monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
        isolation_agents.registry()  # imported now, not inside the timed command
        began = time.monotonic()
        result = cli("run", "--agent", "demo", "--case", str(case), "--requester", "sam")
        assert time.monotonic() - began < 5
        assert result.exit_code == 6, result.stdout + result.stderr
        assert "cannot save to disk" in result.stderr
    finally:
        with contextlib.suppress(redis.RedisError):
            admin.shutdown(nosave=True)
        admin.close()
