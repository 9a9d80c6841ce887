"""Structured logs: one JSON line per significant event, PHI-free.

carebound logs through the standard library (loggers under ``carebound.``). Significant events
are logged with :func:`event`: a name (``run.status``, ``run.drive_failed``,
``connector.failure``, ``breaker.open``, ``worker.start``, ``worker.stop``...) and a few
fields, each a short string, a number, a bool or None: ids, names, counts, classes of errors,
never arguments, documents, reasons or anything else that could carry PHI (a field that is not
one of those is dropped, and a long string cut).

:func:`configure` sets the output up (``carebound serve`` and ``carebound worker`` call it):
JSON lines on stderr by default, level from ``CAREBOUND_LOG_LEVEL`` (default INFO), and
``CAREBOUND_LOG_FORMAT=text`` for plain lines. A service that embeds carebound keeps its own
logging set-up and gets the same records (the event's fields in ``record.carebound``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

MAX_FIELD_CHARS = 200
_Field = str | int | float | bool | None


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the significant event ``name`` with ``fields`` (kept only if small and plain)."""
    if not logger.isEnabledFor(level):
        return
    clean: dict[str, _Field] = {}
    for key, value in fields.items():
        if isinstance(value, bool | int | float) or value is None:
            clean[key] = value
        elif isinstance(value, str):
            clean[key] = value[:MAX_FIELD_CHARS]
    logger.log(level, name, extra={"carebound": {"event": name, **clean}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event (or message) and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "carebound", None)
        if isinstance(fields, dict):
            body.update(fields)
        else:
            body["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            body["error"] = record.exc_info[0].__name__  # the class only: messages may carry PHI
        return json.dumps(body, sort_keys=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a test runner or a
    service may swap it), never to a stream closed since."""

    _carebound = True

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(*, level: str | None = None, fmt: str | None = None) -> None:
    """Send carebound's logs to stderr: JSON lines (or ``text``) at ``level`` (default from
    ``CAREBOUND_LOG_LEVEL``, else INFO). Idempotent."""
    root = logging.getLogger("carebound")
    name = (level or os.environ.get("CAREBOUND_LOG_LEVEL") or "INFO").upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(
            f"CAREBOUND_LOG_LEVEL={name!r} is not a level; use DEBUG, INFO, WARNING or ERROR"
        )
    root.setLevel(name)
    for handler in list(root.handlers):
        if getattr(handler, "_carebound", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    chosen = (fmt or os.environ.get("CAREBOUND_LOG_FORMAT") or "json").lower()
    handler.setFormatter(
        JsonFormatter()
        if chosen == "json"
        else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root.addHandler(handler)
