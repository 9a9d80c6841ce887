"""Structured logs: one JSON line per significant event, PHI-free, level from configuration."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from carebound.logs import JsonFormatter, configure, event


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Call it once to send carebound's logs to the captured stderr, then to read them."""
    root = logging.getLogger("carebound")
    configured = []

    def read() -> list[dict[str, Any]]:
        if not configured:  # at the first call, inside the test, where capsys captures
            configure(level="INFO", fmt="json")
            configured.append(True)
            return []
        err = capsys.readouterr().err.splitlines()
        return [json.loads(line) for line in err if line.startswith("{")]

    yield read
    for handler in list(root.handlers):
        if getattr(handler, "_carebound", False):
            root.removeHandler(handler)
    root.setLevel(logging.NOTSET)


def test_a_run_logs_its_changes_of_status_as_json_lines_without_phi(
    lines: Any, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    lines()
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    got = lines()
    records = [r for r in got if r.get("event") == "run.status"]
    assert records, got
    assert records == [
        {**records[0], "event": "run.status", "run_id": view.run_id, "agent": "demo",
         "status": "paused", "previous": "running", "level": "info"}
    ]  # fmt: skip
    text = json.dumps(records)
    patient = next(e["resource"] for e in demo_case["entry"]
                   if e["resource"]["resourceType"] == "Patient")  # fmt: skip
    assert patient["name"][0]["family"] not in text and "sam" not in text


def test_only_plain_small_fields_are_kept() -> None:
    record = logging.LogRecord("carebound.x", logging.INFO, __file__, 1, "e", None, None)
    logger = logging.getLogger("carebound.test_logs")
    logger.setLevel(logging.INFO)
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        event(logger, "thing.happened", run_id="r1", note="x" * 500, args={"name": "Doe"}, n=3)
    finally:
        logger.removeHandler(handler)
    body = json.loads(JsonFormatter().format(captured[0]))
    assert body["event"] == "thing.happened" and body["run_id"] == "r1" and body["n"] == 3
    assert len(body["note"]) == 200
    assert "args" not in body and "Doe" not in json.dumps(body)
    assert record.getMessage() == "e"


def test_a_bad_level_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="CAREBOUND_LOG_LEVEL='LOUD' is not a level"):
        configure(level="loud")
