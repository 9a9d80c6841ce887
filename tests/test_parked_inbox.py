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


def _casey_signed_in(runner: Runner, redis_client: redis.Redis, key_prefix: str) -> Any:
    """A browser on the web inbox, signed in as casey (an intake coordinator)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    users = UserStore(redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=hasher)
    users.set_password("casey", PASSWORD)
    web = Web(runner=runner, users=users, app=create_app(runner, users=users), world=None,
              case={})  # fmt: skip
    browser = web.browser()
    sign_in(browser, "casey")
    return browser


def test_a_parked_run_is_in_the_inbox_with_its_system_and_retry_time(
    redis_client: redis.Redis, key_prefix: str, env: str
) -> None:
    office = f"http://127.0.0.1:{free_port()}/office"  # nothing listens: the office is down
    runner = _runner(redis_client, key_prefix, office)
    view = runner.start("referral_chaser", _case(), requester="sam",
                        world=WorldSpec.from_bundles(_case(), None))  # fmt: skip
    assert view.status == "waiting"
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
