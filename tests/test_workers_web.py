"""Done-when of the worker pool: two ``carebound worker`` processes and a web server with
``drive="queue"``. A reviewer's approve is answered (202) before the run moves; a worker moves
it; SIGKILL of the worker driving it mid-call loses nothing (the other takes the run over)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from carebound import Runner, load_policy_pack
from carebound._tokens import SCOPES
from carebound.web import UserStore, WebSettings, create_app
from tests.isolation_agents import AGENTS, CALLS_FILE_VAR, SLOW_S_VAR, isolation_pack
from tests.servers import serve_app
from tests.test_web import _cheap_hasher
from tests.test_workers import ROLE, calls_of, wait_for, worker_process, world_of

pytest.importorskip("uvicorn", reason="uvicorn is not installed (carebound[web])")


def _approve(api: httpx.Client, runner: Runner, run_id: str) -> httpx.Response:
    pending = runner.get(run_id).pending
    assert pending is not None
    request = pending.request
    return api.post(
        f"/api/approvals/{request.approval_id}/decision",
        json={"kind": "approve", "args_hash": request.args_hash},
    )


def test_two_workers_and_a_web_server_drive_runs_and_survive_a_killed_worker(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, demo_case: Any,
) -> None:  # fmt: skip
    calls = tmp_path / "calls"
    calls.touch()
    monkeypatch.setenv(CALLS_FILE_VAR, str(calls))
    runner = Runner(
        redis_client, prefix=key_prefix, agents=AGENTS, policy=isolation_pack(), drive="queue"
    )
    users = UserStore(
        redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=_cheap_hasher()
    )
    token = users.create_token("casey-app", (ROLE,), scopes=SCOPES, reviewer="casey")
    app = create_app(runner, users=users, settings=WebSettings())
    options = ["--concurrency", "2", "--lease-ttl", "1.5", "--reclaim-idle", "1"]
    env = {CALLS_FILE_VAR: str(calls), SLOW_S_VAR: "2"}
    workers = [
        worker_process(redis_url, key_prefix, *options, "--interval", "0.2", **env)
        for _ in range(2)
    ]
    try:
        with (
            serve_app(app) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api,
        ):
            views = [
                runner.start("slow_held", demo_case, requester="sam", world=world_of(demo_case))
                for _ in range(2)
            ]
            assert {v.status for v in views} == {"running"}  # queued: the workers park them
            for view in views:
                wait_for(lambda v=view: runner.get(v.run_id).status == "paused", 60, "a hold")
            first, second = (v.run_id for v in views)

            answer = _approve(api, runner, first)
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert body["outcome"] == "decided" and body["run"]["status"] == "paused"
            assert body["status_url"] == f"/api/runs/{first}" == answer.headers["location"]
            assert not [c for c in calls_of(calls) if c[0] == "end"]  # answered before it moved
            wait_for(lambda: bool(calls_of(calls)), 30, "a worker to call the fax")
            ((_, driver),) = calls_of(calls)
            assert driver in {w.pid for w in workers}  # a worker moves it, never the web server
            os.kill(driver, signal.SIGKILL)  # mid-call: the fax takes 2 s
            survivor = next(w for w in workers if w.pid != driver)
            wait_for(lambda: runner.get(first).status == "completed", 60, "the takeover")
            status = api.get(body["status_url"]).json()
            assert status["status"] == "completed"

            answer = _approve(api, runner, second)
            assert answer.status_code == 202 and answer.json()["run"]["status"] == "paused"
            wait_for(lambda: runner.get(second).status == "completed", 30, "the second run")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        errors = {}
        for worker in workers:
            try:
                errors[worker.pid] = worker.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.communicate()
    assert survivor.returncode == 0, errors[survivor.pid]
    assert "Traceback" not in errors[survivor.pid]
    # Nothing lost: both runs completed, each fax's effect recorded once in its ledger; the
    # killed call was made again by the survivor under the same idempotency key.
    assert calls_of(calls) == [
        ("start", driver), ("start", survivor.pid), ("end", survivor.pid),
        ("start", survivor.pid), ("end", survivor.pid),
    ]  # fmt: skip
    for run_id in (first, second):
        (effect,) = runner.ledger.entries(run_id)
        assert effect.status == "done", effect
        assert runner.verify(run_id).ok
        decisions = [e for e in runner.audit(run_id) if e.action == "decision"]
        assert len(decisions) == 1
    assert runner.ledger.entries(first)[0].attempts == 2
    stats = runner.work.stats()
    assert stats.depth == 0 and stats.dead_letters == 0
