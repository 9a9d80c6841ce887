"""Signed checkpoints of runs' chain heads in an append-only file outside Redis.

``carebound audit export`` appends one line per run: its chain head (seq and hash), signed with
the audit key and linked to the line before it. Kept where whoever can write to Redis cannot
(a write-once bucket, a log shipper, another host), the file lets ``audit --verify --anchors``
detect a chain rewritten in Redis after the export, even one whose anchors were rewritten too.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from carebound.audit._chain import canonical_json, format_time
from carebound.audit._errors import AuditExportError
from carebound.audit._keyring import AuditKeyring
from carebound.audit._lockfile import line_hash, line_kind, locked_file
from carebound.audit._log import AuditLog
from carebound.audit._models import GENESIS_HASH, AuditCheckpoint

CHECKPOINT_MAC_CONTEXT = b"carebound-audit-checkpoint:"
"""Prefixed to a checkpoint's canonical JSON before its MAC (apart from event MACs)."""


@dataclass(frozen=True)
class ExportReport:
    """What ``export_checkpoints`` wrote, and which runs it refused."""

    written: list[AuditCheckpoint] = field(default_factory=list)
    """The lines appended, one per run whose chain held."""
    refused: dict[str, list[str]] = field(default_factory=dict)
    """Runs not exported because their chain is broken, with its problems."""


@dataclass(frozen=True)
class AnchorsFile:
    """An anchors file as read back: its valid checkpoints, and what is wrong with it."""

    checkpoints: list[AuditCheckpoint]
    problems: list[str]

    def of_run(self, run_id: str) -> list[AuditCheckpoint]:
        """The checkpoints of ``run_id``, oldest first."""
        return [c for c in self.checkpoints if c.run_id == run_id]


def _mac_message(body: dict[str, Any]) -> bytes:
    return CHECKPOINT_MAC_CONTEXT + canonical_json(body).encode()


def export_checkpoints(
    log: AuditLog, run_ids: Iterable[str], out: Path, *, now: datetime
) -> ExportReport:
    """Verify each run's chain and append a signed checkpoint of its head to ``out``.

    A run whose chain does not verify is not exported (a checkpoint would vouch for the
    tampered state); it is listed in ``ExportReport.refused``. Existing lines are never
    rewritten: the file is opened for appending, locked while the lines are added, and synced.

    Raises:
        AuditExportError: ``out`` cannot be read or written, or its last line is unreadable.
    """
    report = ExportReport()
    heads: list[tuple[str, int, str]] = []
    for run_id in run_ids:
        trail = log.trail(run_id, exists=True)
        if not trail.verify.ok or not trail.events:
            report.refused[run_id] = trail.verify.problems or ["no audit events"]
            continue
        last = trail.events[-1]
        heads.append((run_id, last.seq, last.hash))
    if not heads:
        return report
    keyring = log.keyring
    with _locked_append(out) as (handle, last_line):
        prev = last_line
        for run_id, seq, hash_ in heads:
            body: dict[str, Any] = {
                "kind": "audit-checkpoint",
                "run_id": run_id,
                "seq": seq,
                "hash": hash_,
                "exported_at": format_time(now),
                "prev": prev,
                "key_id": keyring.signing_id,
            }
            line = canonical_json({**body, "mac": keyring.sign(_mac_message(body))})
            handle.write(line + "\n")
            prev = line_hash(line)
            report.written.append(AuditCheckpoint.model_validate_json(line))
        handle.flush()
        os.fsync(handle.fileno())
    return report


@contextlib.contextmanager
def _locked_append(path: Path) -> Iterator[tuple[IO[str], str]]:
    """``path`` open for appending under an exclusive lock, and the hash of its last line."""
    hint = "pass --out a path in a writable directory"
    with locked_file(path, "a+", what="the anchors file", hint=hint) as handle:
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        if lines and line_kind(lines[-1]) != "audit-checkpoint":  # a purge archive is not one
            raise AuditExportError(
                f"the last line of {path} is not a checkpoint: refusing to append to it",
                hint="give --out a new file, or the anchors file written by earlier exports",
            )
        yield handle, (line_hash(lines[-1]) if lines else GENESIS_HASH)


def read_anchors(path: Path, keyring: AuditKeyring) -> AnchorsFile:
    """Read an anchors file, checking each line's MAC and its link to the line before.

    A line that is unreadable, signed wrongly or out of the file's chain is reported (and
    left out): the file was edited after export, or is not an anchors file.

    Raises:
        AuditExportError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise AuditExportError(
            f"cannot read the anchors file {path}: {reason or exc}",
            hint="pass --anchors the file written by 'carebound audit export --out'",
        ) from exc
    checkpoints: list[AuditCheckpoint] = []
    problems: list[str] = []
    prev = GENESIS_HASH
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"anchors file {path.name} line {number}"
        try:
            raw = json.loads(line)
            point = AuditCheckpoint.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            problems.append(f"{where}: not a checkpoint ({str(exc).splitlines()[0][:80]})")
            prev = line_hash(line)
            continue
        mac = raw.pop("mac")
        why = keyring.check(point.key_id, _mac_message(raw), mac)
        if why is not None:
            problems.append(f"{where}: {why}")
        elif point.prev != prev:
            problems.append(
                f"{where}: does not follow the line before it: lines were removed, "
                "reordered or edited"
            )
        else:
            checkpoints.append(point)
        prev = line_hash(line)
    return AnchorsFile(checkpoints, problems)
