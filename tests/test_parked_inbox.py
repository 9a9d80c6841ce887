"""Runs parked on a system that is down show in the operators' views (issue 15): the CLI inbox
(text and JSON), the web inbox (page and JSON) and ``runs``, each with the system and the retry
time; they leave the inbox once the system is back and the run moved on.

The referral chaser asks a referring office by CDex; the office's endpoint is a loopback port
nothing listens on (a system down: connection refused), so the run parks on ``office``.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import redis
from argon2 import PasswordHasher

from carebound import Runner, load_policy_pack
from carebound.state.parked import parked_runs
from carebound.tools.connectors import WorldSpec
from carebound.web import UserStore, create_app
from tests.servers import free_port
from tests.test_cli import cli, cli_json
from tests.test_outage import MONDAY, _case, _runner
from tests.test_web import PASSWORD, Web, sign_in


def _web(runner: Runner, redis_client: redis.Redis, key_prefix: str) -> Web:
    hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    users = UserStore(redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=hasher)
    users.set_password("casey", PASSWORD)
    return Web(runner=runner, users=users, app=create_app(runner, users=users), world=None,
               case={})  # fmt: skip


def _casey_signed_in(runner: Runner, redis_client: redis.Redis, key_prefix: str) -> Any:
    """A browser on the web inbox, signed in as casey (an intake coordinator)."""
    browser = _web(runner, redis_client, key_prefix).browser()
    sign_in(browser, "casey")
    return browser


def _parked_on_the_office(redis_client: redis.Redis, key_prefix: str) -> tuple[Runner, Any]:
    """A referral chaser run parked on the office (nothing listens on its port: it is down)."""
    office = f"http://127.0.0.1:{free_port()}/office"
    runner = _runner(redis_client, key_prefix, office)
    view = runner.start("referral_chaser", _case(), requester="sam",
                        world=WorldSpec.from_bundles(_case(), None))  # fmt: skip
    assert view.status == "waiting"
    return runner, view


def test_the_api_lists_parked_runs_as_the_cli_and_the_web_inbox_do(
    redis_client: redis.Redis, key_prefix: str, env: str
) -> None:
    # One row per parked run, the same fields in all three inboxes (the web's adds its links).
    runner, view = _parked_on_the_office(redis_client, key_prefix)
    api = _web(runner, redis_client, key_prefix).api()
    answer = api.get("/api/approvals")
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["parked"]
    assert row["run_id"] == view.run_id and row["system"] == "office"
    assert row["reason"] == view.record.wait_reason and row["handed_to"] is None
    # (the CLI reads the wall clock, this runner a virtual one: 'retry', relative, differs)
    cli_row = cli_json("inbox")["parked"][0]
    web_row = _casey_signed_in(runner, redis_client, key_prefix).get("/inbox.json").json()
    web_row = {k: v for k, v in web_row["parked"][0].items() if k not in ("url", "retry_text")}
    for other in (cli_row, web_row):
        assert other.keys() == row.keys()
        assert dt.datetime.fromisoformat(other.pop("retry_at")) == dt.datetime.fromisoformat(
            row["retry_at"]
        )
    rest = {k: v for k, v in row.items() if k != "retry_at"}
    assert web_row == rest and rest["retry"] == "in 1m"
    assert {**cli_row, "retry": "in 1m"} == rest
    # The same filters: a role's parked runs are those handed to it; none past due.
    assert api.get("/api/approvals", params={"role": "intake_coordinator"}).json()["parked"] == []
    assert api.get("/api/approvals", params={"overdue": "true"}).json()["parked"] == []
    assert api.get("/api/approvals", params={"agent": "reconciler"}).json()["parked"] == []
    runner.cancel(view.run_id, by="ops", reason="test over")
    assert api.get("/api/approvals").json()["parked"] == []


def test_a_parked_run_is_in_the_inbox_with_its_system_and_retry_time(
    redis_client: redis.Redis, key_prefix: str, env: str
) -> None:
    runner, view = _parked_on_the_office(redis_client, key_prefix)
    retry_at = MONDAY + dt.timedelta(minutes=1)
    assert view.record.wait_until == retry_at
    reason = view.record.wait_reason or ""
    assert reason.startswith("waiting for office to come back")

    # The store's own view: one run parked, on the office.
    [parked] = parked_runs(redis_client, prefix=key_prefix)
    assert (parked.system, parked.record.run_id) == ("office", view.run_id)
    assert parked_runs(redis_client, prefix=key_prefix, agent="reconciler") == []

    # The CLI inbox, JSON and text.
    listed = cli_json("inbox")
    assert listed["approvals"] == []
    [item] = listed["parked"]
    assert item["run_id"] == view.run_id and item["system"] == "office"
    assert item["agent"] == "referral_chaser" and item["reason"] == reason
    assert dt.datetime.fromisoformat(item["retry_at"]) == retry_at
    shown = cli("inbox").stdout
    assert "runs waiting for a system" in shown
    assert view.run_id in shown and "office" in shown and "2026-03-02 09:01 UTC" in shown
    # A role's inbox is its holds only.
    assert cli_json("inbox", "--role", "intake_coordinator")["parked"] == []
    # And 'runs' says why the run waits, with the retry time.
    assert "retry at 2026-03-02 09:01:00 UTC" in cli("runs").stdout

    # The web inbox, page and JSON, for any signed-in reviewer.
    browser = _casey_signed_in(runner, redis_client, key_prefix)
    [row] = browser.get("/inbox.json").json()["parked"]
    assert row["run_id"] == view.run_id and row["system"] == "office"
    assert row["retry_text"] == "2026-03-02 09:01 UTC" and row["url"] == f"/runs/{view.run_id}"
    page = browser.get("/inbox").text
    assert "Runs waiting for a system" in page and f"/runs/{view.run_id}" in page

    # Cancelled (or ended any way), it is no longer parked anywhere.
    runner.cancel(view.run_id, by="ops", reason="test over")
    assert parked_runs(redis_client, prefix=key_prefix) == []
    assert cli_json("inbox")["parked"] == []
    assert browser.get("/inbox.json").json()["parked"] == []


def test_a_run_handed_to_a_role_is_in_that_roles_inbox(
    redis_client: redis.Redis, key_prefix: str, env: str
) -> None:
    # Past the pack's limit (here the first try) the case is handed to a role; that role's
    # inbox (CLI and web) lists the run among its parked runs; another role's does not.
    pack = load_policy_pack("default")
    settings = copy.deepcopy(pack.settings)
    settings["outage"] = {"hand_off_after": 1, "hand_off_role": "intake_coordinator"}
    office = f"http://127.0.0.1:{free_port()}/office"  # nothing listens: the office is down
    runner = _runner(redis_client, key_prefix, office,
                     policy=pack.model_copy(update={"settings": settings}))  # fmt: skip
    view = runner.start("referral_chaser", _case(), requester="sam",
                        world=WorldSpec.from_bundles(_case(), None))  # fmt: skip
    reason = view.record.wait_reason or ""
    assert "the case is with intake_coordinator since try 1" in reason

    [item] = cli_json("inbox", "--role", "intake_coordinator")["parked"]
    assert item["run_id"] == view.run_id and item["system"] == "office"
    assert item["reason"] == reason
    shown = cli("inbox", "--role", "intake_coordinator").stdout
    assert "runs waiting for a system" in shown and view.run_id in shown
    assert cli_json("inbox", "--role", "supervisor")["parked"] == []
    assert cli_json("inbox", "--overdue")["parked"] == []
    [parked] = parked_runs(redis_client, prefix=key_prefix, handed_to="intake_coordinator")
    assert parked.record.run_id == view.run_id and parked.handed_to == "intake_coordinator"
    assert parked_runs(redis_client, prefix=key_prefix, handed_to="supervisor") == []

    browser = _casey_signed_in(runner, redis_client, key_prefix)
    [row] = browser.get("/inbox.json", params={"role": "intake_coordinator"}).json()["parked"]
    assert row["run_id"] == view.run_id and row["reason"] == reason
    page = browser.get("/inbox", params={"role": "intake_coordinator"}).text
    assert "Runs waiting for a system" in page and f"/runs/{view.run_id}" in page
