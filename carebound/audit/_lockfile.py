"""The hash-linked JSON-lines files two processes may append to at once (the anchors file, a
purge's archive): a file held open under an exclusive lock, and what a line links by (its hash)
and is recognised by (its ``kind``)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from carebound.audit._errors import AuditExportError


@contextlib.contextmanager
def locked_file(path: Path, mode: str, *, what: str, hint: str) -> Iterator[IO[str]]:
    """``path`` open in ``mode`` under an exclusive lock, released when it closes.

    Raises:
        AuditExportError: ``path`` cannot be opened (``what`` names it in the message).
    """
    try:
        handle = path.open(mode, encoding="utf-8")
    except OSError as exc:
        raise AuditExportError(
            f"cannot open {what} {path}: {exc.strerror or exc}", hint=hint
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def line_hash(line: str) -> str:
    """The hash the next line of a linked file names as its ``prev``."""
    return hashlib.sha256(line.encode()).hexdigest()


def line_kind(line: str) -> object:
    """The ``kind`` of a JSON line (None when it is not a JSON object)."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed.get("kind") if isinstance(parsed, dict) else None
