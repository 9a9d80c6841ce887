"""An id a caller sends is quoted back capped and escaped, wherever it is echoed: the CLI's
errors (text and ``--json``), the JSON API's problems and the web inbox's 404 pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carebound._errors import ECHO_LIMIT, echo_id
from tests.test_cli import cli
from tests.test_web import (
    Web,
    sign_in,
    web,  # noqa: F401  (the app fixture)
)

LONG = "r" + "x" * 9_999
"""An id of 10,000 characters."""
MOST = 200
"""Characters an answer about one id may take beyond the id's cap (the sentence around it)."""


def test_echo_id_caps_and_escapes() -> None:
    assert echo_id("r1-1") == "'r1-1'"
    assert echo_id("a\x1b[31mb") == repr("a\x1b[31mb")  # escapes, never the raw control
    capped = echo_id(LONG)
    assert capped.startswith(repr(LONG[:ECHO_LIMIT])) and "10,000 characters" in capped
    assert len(capped) < ECHO_LIMIT + 40


@pytest.mark.parametrize(
    "args",
    [
        ("show", LONG),
        ("status", LONG),
        ("audit", LONG),
        ("approve", LONG, "--reviewer", "casey", "--role", "intake_coordinator"),
        ("cancel", LONG, "--reason", "r", "--by", "ops"),
        ("tokens", "revoke", LONG),
        ("run", "--agent", LONG, "--case", "x.json"),
    ],
)
def test_the_cli_never_prints_a_long_id_back(env: str, args: tuple[str, ...]) -> None:
    wanted = 2 if args[0] == "run" else 5
    shown = cli(*args, code=wanted)
    assert LONG not in shown.stdout + shown.stderr
    assert "10,000 characters" in shown.stderr
    assert len(shown.stderr) < ECHO_LIMIT + 2 * MOST
    document = json.loads(cli(*args, "--json", code=wanted).stdout)["error"]
    assert len(document["message"]) < ECHO_LIMIT + MOST


def _problem(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert "x" * ECHO_LIMIT not in answer.text  # at most the cap's first characters
    return str(answer.text)


def test_the_api_and_the_web_never_answer_with_a_long_id(web: Web) -> None:  # noqa: F811
    api = web.api()
    for path in (f"/api/approvals/{LONG}", f"/api/runs/{LONG}", f"/api/runs/{LONG}/audit"):
        assert "10,000 characters" in _problem(api.get(path), 404)
    cancel = api.post(f"/api/runs/{LONG}/cancel", json={"reason": "r"})
    assert "10,000 characters" in _problem(cancel, 404)
    started = api.post("/api/runs", json={"agent": "demo", "case": web.case, "run_id": LONG,
                                          "requester": "sam"})  # fmt: skip
    assert started.status_code in (400, 422) and "x" * ECHO_LIMIT not in started.text
    browser = web.browser()
    sign_in(browser, "casey")
    for path in (f"/approvals/{LONG}", f"/runs/{LONG}"):
        assert "10,000 characters" in _problem(browser.get(path), 404)
