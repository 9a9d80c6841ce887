"""Run management through the JSON API (issue 17): GET /api/runs with filters and paging,
idempotent POST /api/runs (Idempotency-Key header or a client run_id), cancel with a reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.test_web import ROLE, Web

PROBLEM = "application/problem+json"


@pytest.fixture
def site(make_web: Any) -> Web:
    """The web app and API with the default pack."""
    return make_web()


def _start(api: Any, web: Web, **extra: Any) -> Any:
    body = {"agent": "demo", "bundle": web.case, "requester": "sam", **extra.pop("body", {})}
    return api.post("/api/runs", json=body, **extra)


def test_get_runs_lists_filters_and_pages(site: Web) -> None:
    web = site
    api = web.api(roles=())
    first = _start(api, web).json()["run_id"]
    second = _start(api, web, body={"requester": "alex"}).json()["run_id"]
    answer = api.get("/api/runs")
    assert answer.status_code == 200, answer.text  # was 405: only POST existed
    listed = answer.json()
    assert {r["run_id"] for r in listed["runs"]} == {first, second}
    assert listed["next_offset"] is None
    assert all(r["patient_ref"] == "Patient/pat-hello-1" for r in listed["runs"])
    by_alex = api.get("/api/runs", params={"requester": "alex"}).json()["runs"]
    assert [r["run_id"] for r in by_alex] == [second]
    paused = api.get("/api/runs", params={"status": "paused", "agent": "demo"}).json()["runs"]
    assert len(paused) == 2
    on_patient = api.get("/api/runs", params={"patient": "Patient/pat-hello-1"}).json()["runs"]
    assert len(on_patient) == 2
    assert api.get("/api/runs", params={"patient": "Patient/other"}).json()["runs"] == []
    page = api.get("/api/runs", params={"limit": 1}).json()
    assert len(page["runs"]) == 1 and page["next_offset"] == 1
    future = api.get("/api/runs", params={"created_from": "2999-01-01T00:00:00Z"}).json()
    assert future["runs"] == []
    for bad in ({"status": "sleeping"}, {"patient": "p1"}, {"limit": 0},
                {"created_from": "2026-01-01T00:00:00"}, {"color": "red"}):  # fmt: skip
        refused = api.get("/api/runs", params=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"] == PROBLEM
    no_read = web.api(roles=(), name="starter", scopes=("start",))
    assert no_read.get("/api/runs").status_code == 403


def test_a_retried_start_with_an_idempotency_key_starts_one_run(site: Web) -> None:
    web = site
    api = web.api(roles=())
    headers = {"Idempotency-Key": "fax-batch-7/referral-3"}
    first = _start(api, web, headers=headers)
    assert first.status_code == 201, first.text
    retry = _start(api, web, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["run_id"] == first.json()["run_id"]
    assert len(web.runner.list_runs()) == 1
    assert len(web.runner.pending()) == 1  # one held fax, not two
    other = _start(api, web, headers=headers, body={"requester": "alex"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    # another caller's key of the same spelling is theirs
    mine = _start(web.api(roles=(), name="other-app"), web, headers=headers)
    assert mine.status_code == 201 and mine.json()["run_id"] != first.json()["run_id"]


def test_concurrent_retries_start_one_run(site: Web) -> None:
    web = site
    api = web.api(roles=())
    headers = {"Idempotency-Key": "burst"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _start(api, web, headers=headers), range(4)))
    assert sorted(a.status_code for a in answers).count(201) == 1
    assert all(a.status_code in (200, 201, 409) for a in answers), [a.text for a in answers]
    assert len(web.runner.list_runs()) == 1


def test_a_client_run_id_deduplicates_and_a_refused_start_frees_its_key(
    site: Web,
) -> None:
    web = site
    api = web.api(roles=())
    bad = _start(api, web, body={"run_id": "intake-42", "bundle": {"resourceType": "Bundle"}})
    assert bad.status_code == 422
    first = _start(api, web, body={"run_id": "intake-42"})
    assert first.status_code == 201 and first.json()["run_id"] == "intake-42"
    again = _start(api, web, body={"run_id": "intake-42"})
    assert again.status_code == 200 and again.json()["run_id"] == "intake-42"
    assert len(web.runner.list_runs()) == 1
    taken = _start(web.api(roles=(), name="other-app"), web, body={"run_id": "intake-42"})
    assert taken.status_code == 409 and taken.json()["code"] == "run_id_taken"
    assert _start(api, web, body={"run_id": "no spaces"}).status_code == 422


def test_cancel_through_the_api_is_audited(site: Web) -> None:
    web = site
    api = web.api(roles=(), name="ops-app")
    run_id = _start(api, web).json()["run_id"]
    no_reason = api.post(f"/api/runs/{run_id}/cancel", json={})
    assert no_reason.status_code == 422
    reader = web.api(roles=(ROLE,), name="reader", scopes=("read",))
    assert reader.post(f"/api/runs/{run_id}/cancel", json={"reason": "x"}).status_code == 403
    done = api.post(f"/api/runs/{run_id}/cancel", json={"reason": "duplicate referral"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"
    again = api.post(f"/api/runs/{run_id}/cancel", json={"reason": "again"})
    assert again.status_code == 409, again.text
    missing = api.post("/api/runs/r-nope/cancel", json={"reason": "x"})
    assert missing.status_code == 404
    events = api.get(f"/api/runs/{run_id}/audit").json()["events"]
    [cancelled] = [e for e in events if e["detail"].get("status") == "cancelled"]
    assert cancelled["actor"]["id"] == "token:ops-app"
    assert cancelled["detail"]["reason"] == "•••"  # masked: a person's free text


def test_a_retry_of_a_start_refused_for_a_taken_run_id_is_refused_again(site: Web) -> None:
    """Another caller's run holds the run id: the start is refused (409) and so is its retry,
    which is never answered with that other caller's run (the refused start's claim on the
    key was kept, and the retry was taken for a replay of a start that had succeeded)."""
    web = site
    first = _start(web.api(roles=()), web, body={"run_id": "intake-43"})
    assert first.status_code == 201, first.text
    other = web.api(roles=(), name="other-app", scopes=("start",))
    for _ in range(2):
        taken = _start(other, web, body={"run_id": "intake-43"})
        assert taken.status_code == 409 and taken.json()["code"] == "run_id_taken", taken.text
    assert len(web.runner.list_runs()) == 1


def test_a_retry_takes_over_a_key_whose_first_start_died_before_storing_its_run(
    site: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request claimed its key and its process died before the run was stored. A
    retry soon after is told to wait (409: the first may still be starting); once the claim is
    older than any start takes, a retry starts the run under the claimed id, and the retries
    after it are answered with that run. Before, every retry got 409 for a day."""
    from datetime import timedelta

    class Died(BaseException):
        """Stands for the web process dying mid-start (nothing catches it)."""

    web = site
    api = web.api(roles=(), name="intake-app")
    headers = {"Idempotency-Key": "k-crash"}
    start = web.runner.start

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Died

    monkeypatch.setattr(web.runner, "start", die)
    with pytest.raises(Died):
        _start(api, web, headers=headers)
    monkeypatch.setattr(web.runner, "start", start)
    assert web.runner.list_runs() == []

    soon = _start(api, web, headers=headers)
    assert soon.status_code == 409 and soon.json()["code"] == "start_in_progress", soon.text
    web.runner.clock.advance(timedelta(minutes=5))  # more than any start takes
    later = _start(api, web, headers=headers)
    assert later.status_code == 201, later.text
    again = _start(api, web, headers=headers)
    assert again.status_code == 200 and again.json()["run_id"] == later.json()["run_id"]
    assert [r.run_id for r in web.runner.list_runs()] == [later.json()["run_id"]]


def test_a_client_run_id_costs_only_the_engines_claim(
    redis_client: Any, redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    """A start naming its run_id is refused by Runner.start's atomic claim (mapped to
    run_id_taken); the API no longer reads "does a run have it" first, so a start with a client
    run_id takes the round trips of one with an Idempotency-Key (it took one more)."""
    from carebound import Runner, VirtualClock
    from tests.test_round_trips import Counted
    from tests.test_web import _make_web

    counted = Counted(redis_url)

    def counted_runner(**options: Any) -> Runner:
        return Runner(counted.client, prefix=key_prefix, clock=VirtualClock(), **options)

    web = _make_web(counted_runner, redis_client, key_prefix, demo_case, demo_world)
    api = web.api(roles=())

    def trips(**extra: Any) -> int:
        before = counted.sends
        answer = _start(api, web, **extra)
        assert answer.status_code == 201, answer.text
        return counted.sends - before

    trips(headers={"Idempotency-Key": "warm-up"})  # connections, scripts, caches
    keyed = trips(headers={"Idempotency-Key": "k-1"})
    named = trips(body={"run_id": "intake-44"})
    assert named == keyed, (keyed, named)
    taken = _start(web.api(roles=(), name="other-app"), web, body={"run_id": "intake-44"})
    assert taken.status_code == 409 and taken.json()["code"] == "run_id_taken", taken.text
    counted.client.close()


def test_every_problem_document_carries_a_code(site: Web) -> None:
    """The error tree's codes are "what the CLI, the web API and services match on", but the
    API sent them for decision refusals only: a 404 for an unknown run, a 409 for a run that
    ended, a 422 for a bad requester, a body that is not JSON and an unknown route had none."""
    web = site
    api = web.api(roles=())
    assert api.get("/api/runs/r000000000000").json()["code"] == "not_found"
    run_id = _start(api, web).json()["run_id"]
    assert api.post(f"/api/runs/{run_id}/cancel", json={"reason": "x"}).status_code == 200
    ended = api.post(f"/api/runs/{run_id}/cancel", json={"reason": "again"})
    assert ended.status_code == 409 and ended.json()["code"] == "run_state"
    bad = _start(api, web, body={"requester": "a\u001bb"})
    assert bad.status_code == 422 and bad.json()["code"] == "input_limit", bad.text
    garbled = api.post(
        "/api/runs", content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"}
    )
    assert garbled.status_code in (400, 422) and garbled.json()["code"], garbled.text
    nowhere = api.get("/api/no-such-thing")
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found"
    assert nowhere.headers["content-type"] == PROBLEM
