"""The supervisor's dashboard (/dashboard): supervisors only, figures from the audit trail."""

from __future__ import annotations

from typing import Any

import redis

from tests.test_web import Web, _make_web, decide, sign_in


def _web(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, case: Any, world: Any
) -> Web:
    return _make_web(make_runner, redis_client, key_prefix, case, world)


def test_only_supervisors_see_the_dashboard(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    web = _web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    casey = web.browser()
    sign_in(casey, "casey")  # intake_coordinator only
    answer = casey.get("/dashboard")
    assert answer.status_code == 403
    assert 'href="/dashboard"' not in casey.get("/inbox").text
    anonymous = web.browser().get("/dashboard")
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_the_dashboard_shows_the_runs_and_decisions(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    web = _web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    first = web.park()
    web.park()
    jordan = web.browser()
    csrf = sign_in(jordan, "jordan")
    decide(jordan, first.approval_id, csrf, action="approve", args_hash=first.args_hash)
    page = jordan.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "<th>Runs started</th><td>2</td>" in html
    assert "<th>Holds / decisions</th><td>2 / 1</td>" in html
    assert html.count("<svg") == 6
    assert first.run_id not in html  # figures, not runs
