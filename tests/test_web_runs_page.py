"""The web inbox's runs page (issue 17): a supervisor searches every run and cancels one (with
a reason, CSRF-checked, audited); another reviewer sees only the runs they started."""

from __future__ import annotations

from typing import Any

from tests.test_web import sign_in


def test_a_supervisor_searches_and_cancels_runs(make_web: Any) -> None:
    web = make_web()
    first = web.park(requester="sam")
    second = web.park(requester="casey")
    lead = web.browser()
    csrf = sign_in(lead, "jordan")  # intake_coordinator and supervisor
    page = lead.get("/runs")
    assert page.status_code == 200, page.text  # was 404: no runs page
    assert first.run_id in page.text and second.run_id in page.text
    assert 'action="/runs/' in page.text  # cancel forms for the active runs
    only_sam = lead.get("/runs", params={"requester": "sam"}).text
    assert first.run_id in only_sam and second.run_id not in only_sam
    nobody = lead.get("/runs", params={"patient": "Patient/nobody"}).text
    assert first.run_id not in nobody and "No runs match" in nobody
    assert lead.get("/runs", params={"status": "sleeping"}).status_code == 422
    assert lead.get("/runs", params={"since": "soon"}).status_code == 422

    url = f"/runs/{first.run_id}/cancel"
    forged = lead.post(url, data={"reason": "test run", "csrf_token": "wrong"})
    assert forged.status_code == 403
    assert web.runner.get(first.run_id).status == "paused"
    done = lead.post(url, data={"reason": "test run", "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/runs/{first.run_id}"
    assert web.runner.get(first.run_id).status == "cancelled"
    [event] = [e for e in web.runner.audit(first.run_id) if e.detail.get("status") == "cancelled"]
    assert event.actor.id == "jordan" and event.detail["reason"] == "test run"
    cancelled = lead.get("/runs", params={"status": "cancelled"}).text
    assert first.run_id in cancelled and second.run_id not in cancelled

    coordinator = web.browser()
    token = sign_in(coordinator, "casey")
    mine = coordinator.get("/runs", params={"requester": "sam"}).text  # ignored: not a supervisor
    assert second.run_id in mine and first.run_id not in mine
    assert 'action="/runs/' not in mine
    refused = coordinator.post(
        f"/runs/{second.run_id}/cancel", data={"reason": "x", "csrf_token": token}
    )
    assert refused.status_code == 403
    assert web.runner.get(second.run_id).status == "paused"


def test_a_requester_is_searched_in_the_form_runs_store_it(make_web: Any) -> None:
    """'carebound runs --requester Sam' finds sam's runs (ids are stored case-folded); the API
    and the runs page compared the text as typed and found none."""
    web = make_web()
    run = web.park(requester="sam")
    api = web.api(roles=())
    for typed in ("Sam", " SAM "):
        found = api.get("/api/runs", params={"requester": typed}).json()["runs"]
        assert [r["run_id"] for r in found] == [run.run_id], typed
    lead = web.browser()
    sign_in(lead, "jordan")  # a supervisor
    assert run.run_id in lead.get("/runs", params={"requester": "Sam"}).text
    refused = api.get("/api/runs", params={"requester": "s\u200bam"})  # a zero-width space
    assert refused.status_code in (400, 422) and refused.json()["code"] == "invalid_identifier"
