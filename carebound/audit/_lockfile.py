"""A file held open under an exclusive lock, for the audit files two processes may append to
at once (the anchors file, a purge's archive)."""

from __future__ import annotations

import contextlib
import fcntl
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
