"""Purging ended runs through the JSON API and the web inbox (issue 17): ``POST
/api/runs/purge`` with the ``purge`` scope, and the Runs page's form for a supervisor. Both
archive the audit chains first, to the server's archive file (never a caller's path)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

import carebound.engine.retention as retention
from carebound._tokens import default_scopes
from carebound.audit import verify_archive
from carebound.store import StoreSettings
from carebound.web._settings import WebSettings
from tests.test_cli import cli_json
from tests.test_web import Web, sign_in

PROBLEM = "application/problem+json"


def _run_keys(client: redis.Redis, prefix: str, run_id: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{prefix}:{{{run_id}}}:*"))


def _ended_then_parked(web: Web) -> tuple[str, str]:
    """A run cancelled 40 days ago, and a run parked on its hold now."""
    ended = web.park().run_id
    web.runner.cancel(ended, by="ops", reason="test run")
    web.runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    return ended, web.park().run_id


@pytest.fixture
def site(make_web: Any, tmp_path: Path) -> Web:
    """The app, its purge archive in this test's folder (a sub-folder it must create)."""
    return make_web(purge_archive=tmp_path / "archive" / "purged.jsonl")


def test_purge_needs_its_own_scope_never_a_default_one(site: Web) -> None:
    web = site
    ended, _ = _ended_then_parked(web)
    assert "purge" not in default_scopes(["*"], None)
    assert "purge" not in default_scopes([], "casey")
    every_other = web.api(roles=("*",), name="ops-app",
                          scopes=("read", "start", "deliver", "decide", "reveal"))  # fmt: skip
    refused = every_other.post("/api/runs/purge", json={"older_than_days": 30})
    assert refused.status_code == 403, refused.text  # was 404: no such endpoint
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "missing_scope"
    token = web.users.create_token("defaults", ["*"])  # no scopes given: the defaults
    answer = every_other.post(
        "/api/runs/purge", json={"older_than_days": 30},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 403 and answer.json()["code"] == "missing_scope"
    assert web.runner.get(ended).status == "cancelled"


def test_a_dry_run_lists_and_deletes_nothing(
    site: Web, redis_client: redis.Redis, key_prefix: str
) -> None:
    web = site
    ended, _ = _ended_then_parked(web)
    api = web.api(roles=(), name="janitor", scopes=("purge",))
    answer = api.post("/api/runs/purge", json={"older_than_days": 30, "dry_run": True})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["dry_run"] is True and report["purged"] == [ended]
    assert report["keys_deleted"] == 0 and report["refused"] == {}
    assert report["archive"] == str(web.app.state.carebound.settings.purge_archive)
    assert _run_keys(redis_client, key_prefix, ended)
    assert web.runner.get(ended).status == "cancelled"
    assert not Path(report["archive"]).exists()


def test_purge_archives_then_deletes_an_ended_run_and_keeps_a_parked_one(
    site: Web, redis_client: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    web = site
    ended, parked = _ended_then_parked(web)
    api = web.api(roles=(), name="janitor", scopes=("purge", "read"))
    with caplog.at_level(logging.INFO, logger="carebound"):
        answer = api.post("/api/runs/purge", json={"older_than_days": 30})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["dry_run"] is False and report["purged"] == [ended]
    assert report["keys_deleted"] > 5 and report["refused"] == {}
    assert report["ended_before"].startswith(
        (web.runner.clock.now() - timedelta(days=30)).date().isoformat()
    )
    assert _run_keys(redis_client, key_prefix, ended) == []
    assert api.get(f"/api/runs/{ended}").status_code == 404
    assert web.runner.get(parked).status == "paused" and _run_keys(redis_client, key_prefix, parked)
    archive = Path(report["archive"])
    assert archive == web.app.state.carebound.settings.purge_archive
    verdicts = verify_archive(archive, web.runner.audit_log.keyring)
    assert list(verdicts) == [ended] and verdicts[ended].ok and verdicts[ended].count >= 3
    [logged] = [r.carebound for r in caplog.records if getattr(r, "carebound", {}).get(
        "event") == "runs.purged"]  # fmt: skip
    assert logged["by"] == "token:janitor" and logged["purged"] == 1
    assert logged["refused"] == 0 and logged["dry_run"] is False
    assert logged["keys_deleted"] == report["keys_deleted"]
    again = api.post("/api/runs/purge", json={"older_than_days": 30}).json()
    assert again["purged"] == [] and again["keys_deleted"] == 0
    assert all(v.ok for v in verify_archive(archive, web.runner.audit_log.keyring).values())


def test_a_run_whose_chain_does_not_verify_is_kept_and_listed_refused(
    site: Web, redis_client: redis.Redis, key_prefix: str
) -> None:
    web = site
    ended, _ = _ended_then_parked(web)
    stream = f"{key_prefix}:{{{ended}}}:audit"
    redis_client.xdel(stream, redis_client.xrange(stream, count=1)[0][0])
    api = web.api(roles=(), name="janitor", scopes=("purge",))
    report = api.post("/api/runs/purge", json={"older_than_days": 30}).json()
    assert report["purged"] == [] and list(report["refused"]) == [ended]
    assert report["refused"][ended]  # the problems found
    assert _run_keys(redis_client, key_prefix, ended)


@pytest.mark.parametrize(
    "body",
    [
        {"older_than_days": 0},
        {"older_than_days": -3},
        {"older_than_days": 30, "archive": "/etc/passwd"},
        {"older_than_days": 30, "dry_run": "maybe"},
        {},
        # a purge deletes: no lax coercion (true purged what ended more than 1 day ago)
        {"older_than_days": True},
        {"older_than_days": "30"},
        {"older_than_days": 30, "dry_run": "no"},
        {"older_than_days": 30, "dry_run": 0},
    ],
)
def test_bad_purge_requests_get_a_422_problem(site: Web, body: dict[str, Any]) -> None:
    web = site
    ended, _ = _ended_then_parked(web)
    api = web.api(roles=(), name="janitor", scopes=("purge",))
    answer = api.post("/api/runs/purge", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "invalid_request"
    assert web.runner.get(ended).status == "cancelled"


def test_the_archive_setting_and_its_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert StoreSettings.from_env({"CAREBOUND_HOME": str(home)}).archive_file == (
        home.resolve() / "purged-runs.jsonl"
    )
    chosen = tmp_path / "srv" / "runs.jsonl"
    both = {"CAREBOUND_HOME": str(home), "CAREBOUND_ARCHIVE": str(chosen)}
    assert StoreSettings.from_env(both).archive_file == chosen.resolve()
    monkeypatch.setenv("CAREBOUND_HOME", str(home))
    monkeypatch.delenv("CAREBOUND_ARCHIVE", raising=False)
    assert WebSettings().purge_archive == home.resolve() / "purged-runs.jsonl"
    monkeypatch.setenv("CAREBOUND_ARCHIVE", str(chosen))
    assert WebSettings().purge_archive == chosen.resolve()


def test_the_cli_creates_a_purge_token_and_reports_the_archive(env: str, tmp_path: Path) -> None:
    created = cli_json("tokens", "create", "janitor", "--scope", "purge")
    assert created["scopes"] == ["purge"]
    archive = tmp_path / "cli-archive.jsonl"
    report = cli_json("purge", "--older-than", "1", "--archive", str(archive), "--dry-run")
    assert report["archive"] == str(archive) and report["dry_run"] is True


def test_the_endpoint_is_in_the_api_schema(site: Web) -> None:
    from fastapi.testclient import TestClient

    schema = TestClient(site.app).get("/openapi.json").json()
    operation = schema["paths"]["/api/runs/purge"]["post"]
    assert "purge" in operation["description"]
    body = json.dumps(schema["components"]["schemas"]["PurgeIn"])
    assert "older_than_days" in body and "additionalProperties" in body


def test_a_supervisor_purges_from_the_runs_page_others_may_not(
    site: Web, redis_client: redis.Redis, key_prefix: str
) -> None:
    web = site
    ended, parked = _ended_then_parked(web)
    lead = web.browser()
    csrf = sign_in(lead, "jordan")  # intake_coordinator and supervisor
    page = lead.get("/runs").text
    assert 'action="/runs/purge"' in page and "Purge ended runs" in page  # was absent
    forged = lead.post("/runs/purge", data={"older_than_days": "30", "csrf_token": "wrong"})
    assert forged.status_code == 403
    dry_posted = lead.post(
        "/runs/purge", data={"older_than_days": "30", "dry_run": "true", "csrf_token": csrf}
    )
    assert dry_posted.status_code == 303, dry_posted.text  # to the report
    dry = lead.get(dry_posted.headers["location"])
    assert dry.status_code == 200, dry.text
    assert "Would purge <b>1</b>" in dry.text and ended in dry.text
    assert _run_keys(redis_client, key_prefix, ended)
    for bad in ("0", "soon"):
        refused = lead.post("/runs/purge", data={"older_than_days": bad, "csrf_token": csrf})
        assert refused.status_code == 422, bad
    assert _run_keys(redis_client, key_prefix, ended)
    posted = lead.post("/runs/purge", data={"older_than_days": "30", "csrf_token": csrf})
    assert posted.status_code == 303, posted.text
    done = lead.get(posted.headers["location"])
    assert done.status_code == 200, done.text
    assert "Purged <b>1</b>" in done.text and ended in done.text
    archive = web.app.state.carebound.settings.purge_archive
    assert str(archive) in done.text
    assert _run_keys(redis_client, key_prefix, ended) == []
    assert web.runner.get(parked).status == "paused"
    assert verify_archive(archive, web.runner.audit_log.keyring)[ended].ok

    web.runner.cancel(parked, by="ops", reason="test run")
    web.runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    coordinator = web.browser()
    token = sign_in(coordinator, "casey")  # not a supervisor
    assert 'action="/runs/purge"' not in coordinator.get("/runs").text
    refused = coordinator.post("/runs/purge", data={"older_than_days": "30", "csrf_token": token})
    assert refused.status_code == 403
    assert _run_keys(redis_client, key_prefix, parked)


def test_an_unwritable_archive_deletes_nothing(
    make_web: Any, tmp_path: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    web = make_web(purge_archive=blocker / "purged.jsonl")
    ended, _ = _ended_then_parked(web)
    api = web.api(roles=(), name="janitor", scopes=("purge",))
    answer = api.post("/api/runs/purge", json={"older_than_days": 30})
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "archive_unwritable"
    assert str(tmp_path) not in answer.text  # the server's paths stay on the server
    assert _run_keys(redis_client, key_prefix, ended)


def test_two_purges_at_once_leave_an_archive_that_verifies(
    site: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two purge requests at once (server threads; or cron's 'carebound purge' beside the
    server) into the one archive: before, both listed the run, both appended it linked to
    the same last line, and the archive no longer verified ('line 2: does not follow the line
    before it')."""
    web = site
    ended, _ = _ended_then_parked(web)
    listing = retention.ended_before
    both_listed = threading.Barrier(2)

    def list_then_wait(core: Any, cutoff: Any) -> list[str]:
        ids = listing(core, cutoff)
        # let the other purge list too, if it can (it waits for the archive's lock now)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_listed.wait(timeout=2)
        return ids

    monkeypatch.setattr(retention, "ended_before", list_then_wait)
    reports: list[dict[str, Any]] = []

    def purge(name: str) -> None:
        api = web.api(roles=(), name=name, scopes=("purge",))
        reports.append(api.post("/api/runs/purge", json={"older_than_days": 30}).json())

    threads = [threading.Thread(target=purge, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r["purged"]) for r in reports) == [0, 1], reports
    assert all(r["refused"] == {} for r in reports), reports
    archive = web.app.state.carebound.settings.purge_archive
    verdicts = verify_archive(archive, web.runner.audit_log.keyring)
    assert list(verdicts) == [ended] and verdicts[ended].ok, verdicts


def test_reloading_the_purge_report_purges_nothing_again(
    site: Web, redis_client: redis.Redis, key_prefix: str
) -> None:
    """The form redirects to its report (POST-redirect-GET): a reload re-posted the form, so it
    purged again (runs that had ended since) and showed that second purge's report."""
    web = site
    ended, parked = _ended_then_parked(web)
    lead = web.browser()
    csrf = sign_in(lead, "jordan")
    posted = lead.post("/runs/purge", data={"older_than_days": "30", "csrf_token": csrf})
    assert posted.status_code == 303, posted.text
    report_url = posted.headers["location"]
    assert report_url.startswith("/runs/purged/")
    assert _run_keys(redis_client, key_prefix, ended) == []
    # another run ends long ago; reloading the report must not purge it
    web.runner.cancel(parked, by="ops", reason="test run")
    web.runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    for _ in range(2):
        shown = lead.get(report_url)
        assert shown.status_code == 200, shown.text
        assert "Purged <b>1</b>" in shown.text and ended in shown.text
        assert parked not in shown.text
    assert _run_keys(redis_client, key_prefix, parked)
    other = web.browser()
    sign_in(other, "casey")
    assert other.get(report_url).status_code == 404  # only for who purged
    assert lead.get("/runs/purged/nonsense").status_code == 404
