"""Archiving runs' audit chains to a file before their keys are purged, and verifying it.

Each line of an archive holds one run's chain exactly as stored (every stream entry with its
hash, link and MAC) and its head, signed as a whole with the audit key and linked to the line
before it (the way ``carebound audit export`` links its checkpoints). ``verify_archive`` checks
every line's MAC and link, then each chain as ``carebound audit --verify`` checks it in Redis:
an archive edited after it was written does not verify, even where the chains inside it were
recomputed, unless the editor also holds the audit key.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from carebound.audit import _verify
from carebound.audit._chain import EVENT_FIELD, canonical_json, format_time
from carebound.audit._errors import AuditExportError
from carebound.audit._keyring import AuditKeyring
from carebound.audit._lockfile import line_hash, line_kind, locked_file
from carebound.audit._log import AuditLog
from carebound.audit._models import GENESIS_HASH, VerifyResult
from carebound.state.audit_codec import unpack_event

ARCHIVE_MAC_CONTEXT = b"carebound-audit-archive:"
"""Prefixed to a line's canonical JSON before its MAC (apart from event and checkpoint MACs)."""


def _plain_fields(fields: Any) -> dict[str, str]:
    """A stream entry's fields as text, its event as plain canonical JSON (an archive is read
    by people and tools without carebound's stored form; it verifies the same)."""
    plain = {_str(k): v for k, v in fields.items()}
    return {k: _str(unpack_event(v) if k == EVENT_FIELD else v) for k, v in plain.items()}


@dataclass(frozen=True)
class ArchiveReport:
    """Which runs ``archive_chains`` wrote, and which it refused (their chain is broken)."""

    written: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)


@contextlib.contextmanager
def archive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the archive ``path`` for a whole purge: listing the runs,
    appending their chains and deleting them. Two purges into one archive at once (two API
    requests, cron's ``carebound purge`` beside the server) would otherwise both link a line
    to the same last line, and the archive would no longer verify. The lock is a file beside
    the archive (``path`` + ``.lock``, left in place), so an archive is only created when a
    chain is written to it.

    Raises:
        AuditExportError: the lock file cannot be opened.
    """
    lock = path.with_name(path.name + ".lock")
    hint = "pass --archive a file in a writable folder"
    with locked_file(lock, "a", what="the archive's lock file", hint=hint):
        yield


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _last_line(path: Path, block: int = 65536) -> bytes | None:
    """The last non-blank line of ``path`` (None: the file is missing or blank), read from
    the end: an archive grows for years, and each purge appends to it."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            end = start
            stripped = tail.rstrip()
            if b"\n" in stripped or (end == 0 and stripped):
                return stripped.rsplit(b"\n", 1)[-1]
        return None


def _lastline_hash(path: Path) -> str:
    """The hash the next line links to; refuses a file that is not an archive, before any
    run is purged (a purge appended to any file it was given, a typo'd anchors file or a
    config, then deleted the runs: the archive did not verify as a whole)."""
    hint = "pass --archive a new file, or an archive 'carebound purge' wrote"
    try:
        last = _last_line(path)
        if last is None:
            return GENESIS_HASH
        line = last.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditExportError(f"cannot read the archive {path}: {exc}", hint=hint) from exc
    if line_kind(line) != "audit-archive":
        raise AuditExportError(
            f"{path} is not an archive of audit chains (its last line is not an archive "
            "line); nothing was purged",
            hint=hint,
        )
    return line_hash(line)


def archive_chains(
    log: AuditLog, run_ids: Iterable[str], out: Path, *, now: datetime
) -> ArchiveReport:
    """Verify each run's chain and append it, signed, to ``out`` (a run whose chain does not
    verify is refused: an archive would vouch for the tampered state). The file is appended
    to and synced, never rewritten.

    Raises:
        AuditExportError: ``out`` cannot be read or written.
    """
    report = ArchiveReport()
    keyring = log.keyring
    lines: list[str] = []
    prev = _lastline_hash(out)
    for run_id in run_ids:
        entries, head, anchor = log.raw_chain(run_id)
        verdict = _verify.verify_chain(
            run_id, entries, head, keyring=keyring, anchor=anchor, exists=True
        )
        if not verdict.ok:
            report.refused[run_id] = verdict.problems
            continue
        body: dict[str, Any] = {
            "kind": "audit-archive",
            "run_id": run_id,
            "entries": [[_str(i), _plain_fields(f)] for i, f in entries],
            "head": [_str(h) if h is not None else None for h in head],
            "archived_at": format_time(now),
            "prev": prev,
            "key_id": keyring.signing_id,
        }
        mac = keyring.sign(ARCHIVE_MAC_CONTEXT + canonical_json(body).encode())
        line = canonical_json({**body, "mac": mac})
        lines.append(line)
        prev = line_hash(line)
        report.written.append(run_id)
    if not lines:
        return report
    try:
        with out.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise AuditExportError(
            f"cannot write the archive {out}: {exc.strerror or exc}",
            hint="pass --archive a file in a writable folder",
        ) from exc
    return report


def verify_archive(path: Path, keyring: AuditKeyring) -> dict[str, VerifyResult]:
    """Check an archive line by line (MAC, link to the line before) and each run's chain in
    it; the result per run id (a line that cannot be read is reported under ``line N``).

    Raises:
        AuditExportError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditExportError(
            f"cannot read the archive {path}: {exc}",
            hint="pass the file 'carebound purge --archive' wrote",
        ) from exc
    results: dict[str, VerifyResult] = {}
    prev = GENESIS_HASH
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            raw = json.loads(line)
            mac = raw.pop("mac")
            run_id = str(raw["run_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            results[where] = VerifyResult(ok=False, count=0, problems=[f"{where}: unreadable"])
            prev = line_hash(line)
            continue
        problems: list[str] = []
        message = ARCHIVE_MAC_CONTEXT + canonical_json(raw).encode()
        why = keyring.check(str(raw.get("key_id")), message, mac)
        if why is not None:
            problems.append(f"{where}: {why}")
        if raw.get("prev") != prev:
            problems.append(f"{where}: does not follow the line before it")
        prev = line_hash(line)
        entries = [(entry_id, fields) for entry_id, fields in raw.get("entries", [])]
        head = raw.get("head") or [None, None]
        anchor = f"{head[0]}:{head[1]}" if head[0] is not None else None
        chain = _verify.verify_chain(
            run_id, entries, head, keyring=keyring, anchor=anchor, exists=True
        )
        results[run_id] = VerifyResult(
            ok=chain.ok and not problems,
            count=chain.count,
            problems=[*problems, *chain.problems],
        )
    return results
