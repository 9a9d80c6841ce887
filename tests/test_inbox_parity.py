"""The three inboxes (the CLI's ``--json``, the web inbox's ``/inbox.json`` and the API's
``GET /api/approvals``) list a hold with the same fields and values (one ``inbox_row``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.test_cli import cli_json
from tests.test_web import (
    Web,
    sign_in,
    web,  # noqa: F401  (the app fixture)
)


def _comparable(row: dict[str, Any], *clocked: str) -> dict[str, Any]:
    """A row without the web's links and what depends on the reader's clock."""
    kept = {k: v for k, v in row.items() if k not in ("url", "deadline_text", *clocked)}
    kept["deadline"] = dt.datetime.fromisoformat(kept["deadline"])
    return kept


def test_a_hold_is_the_same_row_in_the_cli_the_web_and_the_api(web: Web, env: str) -> None:  # noqa: F811
    request = web.park()
    [from_api] = web.api().get("/api/approvals").json()["approvals"]
    [from_cli] = cli_json("inbox")["approvals"]
    browser = web.browser()
    sign_in(browser, "casey")
    [from_web] = browser.get("/inbox.json").json()["items"]
    assert from_api["approval_id"] == request.approval_id
    assert from_api["args_hash"] == request.args_hash and from_api["two_person"] is False
    assert _comparable(from_api) == _comparable(from_web)
    # (the CLI reads the wall clock, this app's runner a virtual one: 'due' and 'overdue')
    assert _comparable(from_cli, "due", "overdue") == _comparable(from_api, "due", "overdue")
    assert from_cli.keys() == from_api.keys()
