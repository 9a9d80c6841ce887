"""Retention of run keys: when a run ends, every key of it gets a TTL in the write that ends it;
a run that is not ended has none, and one reopened loses them again.

Checked on real Redis with PTTL (never by waiting for keys to expire). "Every key" is what a
SCAN of the run's hash tag finds, so a key that a store adds later and retention does not know
makes these tests fail; ``tests/test_scenarios.py`` runs the same check after every scenario.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from carebound import Runner, VirtualClock
from carebound.cli import app
from carebound.engine.pool import release_quarantine
from carebound.state.keys import key_registry, text
from carebound.state.retention import AUDIT_SUFFIXES, RETENTION_VAR, retention_seconds
from carebound.state.runs import FINAL_STATUSES
from tests.conftest import SCENARIOS
from tests.isolation_agents import AGENTS, POISON_FILE_VAR, isolation_pack
from tests.test_cli import cli, cli_json, start_demo
from tests.test_failure_isolation import _poison_run, _start

DAY = 86400


def run_ttls(client: redis.Redis, prefix: str, run_id: str) -> dict[str, int]:
    """Every key of the run (a SCAN of its hash tag) and its PTTL in ms (-1: none)."""
    keys = [text(k) for k in client.scan_iter(match=f"{prefix}:{{{run_id}}}:*", count=1000)]
    return {key: int(client.pttl(key)) for key in keys}


def assert_retention(client: redis.Redis, prefix: str, ttl_s: int) -> int:
    """Every run under ``prefix``: an ended run's keys all expire within ``ttl_s`` but its audit
    chain (kept until archived), the keys of one that has not ended never. Returns how many
    ended runs were checked."""
    ended = 0
    for raw in client.zrange(f"{prefix}:runs", 0, -1):
        run_id = text(raw)
        stored = client.hget(f"{prefix}:{{{run_id}}}:run", "status")
        assert stored is not None, run_id
        status = text(stored)
        ttls = run_ttls(client, prefix, run_id)
        assert ttls, run_id
        chain = {f"{prefix}:{{{run_id}}}:{suffix}" for suffix in AUDIT_SUFFIXES}
        assert {k: t for k, t in ttls.items() if k in chain and t != -1} == {}, run_id
        ttls = {k: t for k, t in ttls.items() if k not in chain}
        if status in FINAL_STATUSES:
            ended += 1
            lasting = {k: t for k, t in ttls.items() if not 0 < t <= ttl_s * 1000}
            assert lasting == {}, f"{run_id} ({status}): keys without the retention TTL"
        else:
            expiring = {k: t for k, t in ttls.items() if t != -1}
            assert expiring == {}, f"{run_id} ({status}): keys of a live run expire"
    return ended


def test_a_cancelled_run_expires_every_key_a_parked_one_none(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any, redis_client: redis.Redis,
    key_prefix: str,
) -> None:  # fmt: skip
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused"
    ttls = run_ttls(redis_client, key_prefix, view.run_id)
    assert len(ttls) > 10 and set(ttls.values()) == {-1}
    # the approval is found through the run's key registry (fields of the run hash), which
    # lists no other key; the simulated world's keys through the world's own meta hash
    registry = key_registry(key_prefix, view.run_id)
    assert registry == f"{key_prefix}:{{{view.run_id}}}:run"
    registered = {text(m) for m in redis_client.hkeys(registry) if b":" in m}
    assert registered == {f"approval:{view.pending.request.approval_id}"}
    assert not redis_client.exists(f"{key_prefix}:{{{view.run_id}}}:keys")
    meta = redis_client.hkeys(f"{key_prefix}:{{{view.run_id}}}:world:meta")
    assert any(text(m).startswith("world:ehr:res:") for m in meta)

    runner.cancel(view.run_id, by="ops", reason="scenario run in the real store")
    ttls = run_ttls(redis_client, key_prefix, view.run_id)
    kept = {k for k, t in ttls.items() if t == -1}
    # the chain: its stream and its head (the once keys are marked in the head since; a run
    # recorded before also keeps 'audit:once', which AUDIT_SUFFIXES still names)
    assert kept == {f"{key_prefix}:{{{view.run_id}}}:{s}" for s in ("audit", "audit:head")}
    expiring = [t for t in ttls.values() if t != -1]
    assert len(expiring) >= 8
    assert ttls[f"{key_prefix}:{{{view.run_id}}}:cp:pk"] != -1  # the parked run's checkpoint
    assert all(30 * DAY * 1000 - 60_000 < t <= 30 * DAY * 1000 for t in expiring), ttls
    assert assert_retention(redis_client, key_prefix, 30 * DAY) == 1


def test_a_run_stored_before_with_its_world_and_hold_in_the_key_registry_expires_whole(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any, redis_client: redis.Redis,
    key_prefix: str,
) -> None:  # fmt: skip
    """How runs were stored before: the simulated world's keys listed in the run's key registry
    (not in world:meta) and the hold's request in its record. Cancelled, every key but the
    audit chain still gets the TTL."""
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    base = f"{key_prefix}:{{{view.run_id}}}:"
    meta, hold = base + "world:meta", base + f"approval:{view.pending.request.approval_id}"
    world = [text(m) for m in redis_client.hkeys(meta) if text(m).startswith("world:")]
    assert world
    redis_client.hdel(meta, *world)
    redis_client.hset(key_registry(key_prefix, view.run_id), mapping=dict.fromkeys(world, ""))
    redis_client.hset(hold, "request", redis_client.get(hold + ":request") or b"")
    redis_client.delete(hold + ":request")
    runner.cancel(view.run_id, by="ops", reason="scenario run in the real store")
    assert assert_retention(redis_client, key_prefix, 30 * DAY) == 1


def test_a_completed_run_expires_after_the_runners_retention(
    redis_client: redis.Redis, key_prefix: str, demo_case: dict[str, Any]
) -> None:
    with Runner(
        redis_client, prefix=key_prefix, clock=VirtualClock(), agents=AGENTS,
        policy=isolation_pack(), retention_days=2,
    ) as runner:  # fmt: skip
        view = _start(runner, "timer", demo_case)
        assert view.status == "waiting"
        assert set(run_ttls(redis_client, key_prefix, view.run_id).values()) == {-1}
        assert isinstance(runner.clock, VirtualClock)
        runner.clock.advance(timedelta(hours=1))  # the timer agent waits one hour
        runner.sweep()
        assert runner.get(view.run_id).status == "completed"
        failed = _start(runner, "crashy", demo_case)  # fails in its first drive
        assert failed.status == "failed"
    assert assert_retention(redis_client, key_prefix, 2 * DAY) == 2
    for run_id in (view.run_id, failed.run_id):
        ttls = [t for t in run_ttls(redis_client, key_prefix, run_id).values() if t != -1]
        assert len(ttls) > 5 and min(ttls) > 2 * DAY * 1000 - 60_000


def test_zero_days_keeps_ended_runs(
    redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch,
    demo_case: dict[str, Any], demo_world: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv(RETENTION_VAR, "0")
    with Runner(redis_client, prefix=key_prefix) as runner:
        view = runner.start("demo", demo_case, requester="sam", world=demo_world)
        runner.cancel(view.run_id, by="ops", reason="test")
    assert set(run_ttls(redis_client, key_prefix, view.run_id).values()) == {-1}


def _isolation_runner(redis_client: redis.Redis, key_prefix: str) -> Runner:
    return Runner(
        redis_client, prefix=key_prefix, clock=VirtualClock(), agents=AGENTS,
        policy=isolation_pack(),
    )  # fmt: skip


def _quarantined(runner: Runner, demo_case: dict[str, Any], poison: Path) -> str:
    """A run that keeps crashing its drive, quarantined by the third recovery."""
    run_id = _poison_run(runner, demo_case, poison)
    for _ in range(3):
        runner.recover_runs()
    assert runner.get(run_id).status == "quarantined"
    return run_id


def test_a_quarantined_run_expires_and_keeps_its_keys_once_released(
    redis_client: redis.Redis, key_prefix: str, demo_case: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    poison = tmp_path / "poison"
    monkeypatch.setenv(POISON_FILE_VAR, str(poison))
    with _isolation_runner(redis_client, key_prefix) as runner:
        run_id = _quarantined(runner, demo_case, poison)
        assert assert_retention(redis_client, key_prefix, 30 * DAY) == 1
        assert max(run_ttls(redis_client, key_prefix, run_id).values()) > 0
        release_quarantine(runner._core, runner._driver, run_id)
        assert runner.get(run_id).status == "running"
        assert set(run_ttls(redis_client, key_prefix, run_id).values()) == {-1}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("", 30 * DAY), ("7", 7 * DAY), ("0.5", DAY // 2), ("0", 0), ("none", 0), ("KEEP", 0)],
)
def test_retention_from_the_environment(value: str, seconds: int) -> None:
    assert retention_seconds(environ={RETENTION_VAR: value}) == seconds


@pytest.mark.parametrize("value", ["thirty", "-1", "nan"])
def test_a_bad_retention_is_refused_clearly(value: str, env: str) -> None:
    with pytest.raises(ValueError, match="0"):
        retention_seconds(environ={RETENTION_VAR: value})
    scenario = str(SCENARIOS / "hello_hold.yaml")
    for args in (["cancel", "r000000000000", "--reason", "x", "--by", "ops"], ["run", scenario]):
        result = CliRunner().invoke(app, args, env={RETENTION_VAR: value})
        assert result.exit_code == 2, result.output
        assert RETENTION_VAR in result.output and "Traceback" not in result.output


# -- the audit chains expired runs leave: archived, checked, then deleted ----------------------


def _expire(client: redis.Redis, prefix: str, run_id: str) -> None:
    """What Redis does once the TTLs pass: every key of the run that has one is gone."""
    for key, ttl in run_ttls(client, prefix, run_id).items():
        if ttl > 0:
            client.delete(key)


def test_audit_archive_keeps_expired_runs_chains_verifiable_then_deletes_them(
    env: str, case_file: Path, redis_client: redis.Redis, tmp_path: Path
) -> None:
    prefix = env
    ended = start_demo(case_file)["run_id"]
    alive = start_demo(case_file)["run_id"]
    cli("cancel", ended, "--reason", "scenario run in the real store", "--by", "ops")
    _expire(redis_client, prefix, ended)
    chain_keys = {f"{prefix}:{{{ended}}}:{s}" for s in ("audit", "audit:head")}
    assert set(run_ttls(redis_client, prefix, ended)) == chain_keys  # all that is left
    assert redis_client.xlen(f"{prefix}:audit") > 0

    out = tmp_path / "chains.jsonl"
    # a run started after the cutoff is not touched
    early = cli_json("audit", "archive", "--before", "2020-01-01", "--out", str(out))
    assert early["archived"] == [] and not out.exists()

    report = cli_json("audit", "archive", "--before", "2999-01-01", "--out", str(out))
    assert report["archived"] == [ended] and report["refused"] == {}
    assert report["keys_deleted"] == len(chain_keys)
    assert report["audit_index_trimmed"] > 0
    assert run_ttls(redis_client, prefix, ended) == {}
    assert redis_client.zscore(f"{prefix}:runs", ended) is None
    assert redis_client.hget(f"{prefix}:audit:anchors", ended) is None
    # the live run keeps its chain; the archive holds the expired one's, and it verifies
    assert cli_json("audit", alive, "--verify")["verify"]["ok"] is True
    verified = cli_json("verify-archive", str(out))
    assert verified["ok"] is True and list(verified["runs"]) == [ended]
    assert verified["runs"][ended]["count"] >= 3
    # an edited archive does not: the run's first event taken out of its line
    line = json.loads(out.read_text())
    line["entries"] = line["entries"][1:]
    out.write_text(json.dumps(line) + "\n")
    edited = cli_json("verify-archive", str(out), code=1)
    assert edited["ok"] is False and edited["runs"][ended]["problems"]


def test_audit_archive_keeps_a_broken_chain(
    env: str, case_file: Path, redis_client: redis.Redis, tmp_path: Path
) -> None:
    prefix = env
    ended = start_demo(case_file)["run_id"]
    cli("cancel", ended, "--reason", "test", "--by", "ops")
    _expire(redis_client, prefix, ended)
    stream = f"{prefix}:{{{ended}}}:audit"
    first_id = redis_client.xrange(stream, count=1)[0][0]
    redis_client.xdel(stream, first_id)  # tampered: an event removed
    out = tmp_path / "chains.jsonl"
    report = cli_json("audit", "archive", "--before", "2999-01-01", "--out", str(out), code=1)
    assert report["archived"] == [] and list(report["refused"]) == [ended]
    assert redis_client.exists(stream) == 1  # kept for someone to look at
    assert not out.exists()


def test_a_cancelled_intake_run_expires_its_simulated_systems_attempt_counters(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    """A run that made effects on the simulator has its systems' attempt counters
    (``world:<system>:attempts``); the world's registry lists them, so they expire with the
    run (they were left without a TTL for ever)."""
    from tests.intake_scenario import intake_case_and_world

    case, world = intake_case_and_world()
    runner = make_runner()
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting"
    base = f"{key_prefix}:{{{view.run_id}}}:"
    counters = [
        k for k in run_ttls(redis_client, key_prefix, view.run_id) if k.endswith(":attempts")
    ]
    assert counters, "the intake start made effects: the simulator counted their attempts"
    runner.cancel(view.run_id, by="ops", reason="scenario run in the real store")
    ttls = run_ttls(redis_client, key_prefix, view.run_id)
    kept = {k for k, t in ttls.items() if t == -1}
    assert kept == {base + s for s in ("audit", "audit:head")}, kept


def test_an_expired_runs_chain_can_be_read_and_verified_until_it_is_archived(
    env: str, case_file: Path, redis_client: redis.Redis, make_runner: Any
) -> None:
    """The chain outlives the run's other keys until 'audit archive' (README: retention), but
    'carebound audit RUN --verify' and GET /api/runs/{id}/audit said 'no run' once the run's
    record expired: nobody could read or check the trail the store kept for them."""
    prefix = env
    ended = start_demo(case_file)["run_id"]
    cli("cancel", ended, "--reason", "scenario run in the real store", "--by", "ops")
    _expire(redis_client, prefix, ended)
    assert cli("status", ended, code=5).exit_code == 5  # the run is gone
    trail = cli_json("audit", ended, "--verify")
    assert trail["verify"]["ok"] is True
    [cancelled] = [e for e in trail["events"] if e["detail"].get("status") == "cancelled"]
    assert cancelled["detail"]["reason"] == "•••"  # still masked: a person's free text
    assert make_runner().audit_trail(ended).verify.ok  # the library (and the API) too
    assert cli("audit", "r000000000000", code=5).exit_code == 5  # no chain: no run


def test_a_run_released_from_the_quarantine_while_a_purge_lists_it_is_kept(
    redis_client: redis.Redis, key_prefix: str, demo_case: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A purge lists the ended runs, then (a whole-keyspace scan later) deletes them: an
    operator who released a quarantined run in between (it runs again) lost it, keys and all,
    mid-retry. The purge now takes each run's lease and checks it still ended before the
    cutoff; the released run is kept, the others are purged."""
    import carebound.engine.retention as retention

    poison = tmp_path / "poison"
    monkeypatch.setenv(POISON_FILE_VAR, str(poison))
    with _isolation_runner(redis_client, key_prefix) as runner:
        run_id = _quarantined(runner, demo_case, poison)
        runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
        listed = retention.ended_before

        def listed_then_released(core: Any, cutoff: Any) -> list[str]:
            found = listed(core, cutoff)
            assert found == [run_id]
            release_quarantine(runner._core, runner._driver, run_id)  # the operator, meanwhile
            return found

        monkeypatch.setattr(retention, "ended_before", listed_then_released)
        report = runner.purge(runner.clock.now() - timedelta(days=30), archive=None)
        assert report.purged == [] and report.keys_deleted == 0
        assert runner.get(run_id).status == "running"
        monkeypatch.setattr(retention, "ended_before", listed)
        assert runner.purge(runner.clock.now() - timedelta(days=30), archive=None).purged == []
