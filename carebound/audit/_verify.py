"""Checking a run's audit chain: hashes, MACs, links, gaps, order, its head and its anchors.

I/O-free: the logs read the run's stream, head and anchor in one round trip and hand the
replies here. What each check catches:

- an event's ``hash`` is recomputed from its content: an edit without rehashing shows;
- its ``mac`` is checked under the audit key it names: a chain rewritten with recomputed
  hashes (another reviewer blamed, an event removed and the rest re-chained, a forged event
  appended, a time backdated, another run's events relabelled) shows without that key;
- ``prev_hash`` links, seq gaps, duplicates and order: removal, reordering, duplication;
- the run's head and its anchor (the head mirrored outside the run's keys): a tail cut with
  the head reset, or stream and head deleted together;
- exported checkpoints (``carebound audit export``), when given: anything rewritten in Redis
  since the export, anchors included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from carebound.audit._chain import entry_event, event_mac_message, sha256_hex, text
from carebound.audit._errors import AuditCorruptError
from carebound.audit._keyring import AuditKeyring
from carebound.audit._models import GENESIS_HASH, AuditCheckpoint, AuditEvent, VerifyResult

Reply = bytes | str | None


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for n in numbers:
        if spans and spans[-1][1] == n - 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    return spans


def read_entry(
    fields: Mapping[bytes | str, bytes | str] | None,
) -> tuple[dict[str, Any], AuditEvent]:
    """A stream entry's raw JSON object and its event.

    Raises:
        AuditCorruptError, ValueError: the entry cannot be read as an event.
    """
    raw = json.loads(entry_event(fields))
    if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str):
        raise ValueError("not a JSON object with a 'hash'")
    return raw, AuditEvent.model_validate(raw)


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return ".".join(map(str, error["loc"])) + ": " + error["msg"]
    return str(exc)


def _check_entry(
    run_id: str,
    entry_id: str,
    fields: Mapping[bytes | str, bytes | str] | None,
    keyring: AuditKeyring,
) -> tuple[AuditEvent | None, list[str]]:
    where = f"entry {entry_id}"
    try:
        raw, event = read_entry(fields)
    except (AuditCorruptError, ValueError) as exc:
        return None, [f"{where}: unparseable: {_unreadable(exc)}"]
    where = f"seq {event.seq} ({where})"
    problems: list[str] = []
    stored = raw.pop("hash")
    mac = raw.pop("mac", None)
    computed = sha256_hex(raw)  # every field the stored event has, whatever they are
    if stored != computed:
        problems.append(
            f"{where}: hash mismatch: stored {stored[:12]}..., content hashes to "
            f"{computed[:12]}...: the event was altered"
        )
    why = keyring.check(event.key_id, event_mac_message(stored), mac)
    if why is not None:
        problems.append(f"{where}: {why}")
    if event.run_id != run_id:
        problems.append(f"{where}: belongs to run {event.run_id!r}, not {run_id!r}")
    return event, problems


def _parse_anchor(anchor: Reply) -> tuple[int, str] | None:
    if anchor is None:
        return None
    seq, _, hash_ = text(anchor).partition(":")
    return (int(seq), hash_) if seq.isdigit() and hash_ else (-1, text(anchor)[:40])


def readable_events(entries: Sequence[tuple[Any, Any]]) -> list[AuditEvent]:
    """The events of a run's stream entries that can be read (unreadable ones are left out:
    ``verify_chain`` reports them)."""
    events: list[AuditEvent] = []
    for _, fields in entries:
        try:
            events.append(read_entry(fields)[1])
        except (AuditCorruptError, ValueError):
            continue
    return events


def verify_chain(
    run_id: str,
    entries: Sequence[tuple[Any, Any]],
    head: Sequence[Reply],
    *,
    keyring: AuditKeyring,
    anchor: Reply,
    exists: bool = False,
    checkpoints: Sequence[AuditCheckpoint] = (),
) -> VerifyResult:
    """Check a run's stream entries (in stream order) against each other, their MACs, the
    stored head, the run's anchor and any exported checkpoints of the run.

    Args:
        run_id: the run the entries must belong to.
        entries: ``XRANGE`` of the run's stream.
        head: ``HMGET head seq hash`` (``[None, None]`` if there is no head).
        keyring: the audit keys events may be signed with.
        anchor: the run's field of the anchors hash (``seq:hash``; None if missing).
        exists: the run is known to exist (its record is stored): every run records its
            creation, so an empty chain is then a deleted one.
        checkpoints: the run's exported checkpoints, already checked against their MACs.
    """
    problems: list[str] = []
    events: list[AuditEvent] = []
    unreadable = 0
    for entry_id, fields in entries:
        event, found = _check_entry(run_id, text(entry_id), fields, keyring)
        problems += found
        if event is None:
            unreadable += 1
        else:
            events.append(event)

    by_seq: dict[int, AuditEvent] = {}
    for before, event in zip([None, *events], events, strict=False):
        if event.seq in by_seq:
            problems.append(f"seq {event.seq}: appears more than once: an event was duplicated")
        elif before is not None and event.seq < before.seq:
            problems.append(
                f"seq {event.seq}: stored after seq {before.seq}: events out of order (reordered)"
            )
        by_seq.setdefault(event.seq, event)

    for event in events:
        if event.seq == 1:
            expected: str | None = GENESIS_HASH
        else:
            previous = by_seq.get(event.seq - 1)
            expected = previous.hash if previous is not None else None
        if expected is not None and event.prev_hash != expected:
            problems.append(
                f"seq {event.seq}: prev_hash mismatch: it does not link to "
                + ("the chain start" if event.seq == 1 else f"seq {event.seq - 1}'s hash")
            )

    head_seq = int(text(head[0])) if head[0] is not None else None
    head_hash = text(head[1]) if head[1] is not None else None
    top = max([*by_seq, head_seq or 0])
    for first, last in _ranges(sorted(set(range(1, top + 1)) - set(by_seq))):
        span = f"seq {first}" if first == last else f"seqs {first}-{last}"
        why = "removed or unreadable" if unreadable else "removed"
        problems.append(f"{span}: missing: event(s) {why} (seq gap)")

    last_event = by_seq.get(max(by_seq)) if by_seq else None
    if head_seq is None:
        if events:
            problems.append("chain head is missing although the stream has events")
    elif last_event is None:
        problems.append(f"chain head records seq {head_seq} but no event could be read")
    elif last_event.seq != head_seq:
        how = "removed" if last_event.seq < head_seq else "added without the recorder"
        problems.append(
            f"chain head records seq {head_seq} but the last event is seq "
            f"{last_event.seq}: events {how}"
        )
    elif last_event.hash != head_hash:
        problems.append(
            f"seq {head_seq}: hash differs from the chain head's: the last event or the "
            "head was altered"
        )
    parsed_anchor = _parse_anchor(anchor)
    problems += _anchor_problems(parsed_anchor, by_seq, bool(entries), exists)
    problems += _checkpoint_problems(checkpoints, by_seq)
    notes = _anchor_lag(parsed_anchor, by_seq) if not problems else []
    return VerifyResult(
        ok=not problems,
        count=len(entries),
        problems=problems,
        checkpoints=len(checkpoints),
        notes=notes,
    )


def _anchor_problems(
    anchor: tuple[int, str] | None, by_seq: Mapping[int, AuditEvent], stored: bool, exists: bool
) -> list[str]:
    """The run's anchor (its head mirrored outside its keys) against its chain."""
    top = max(by_seq) if by_seq else 0
    if anchor is None:
        if stored:
            return [
                "the run's anchor (its chain head mirrored outside the run's keys) is missing: "
                "it was deleted, or the events were written without it"
            ]
        if exists:
            return [
                "the run exists but its audit chain is empty: every run records its creation, "
                "so its events and head were deleted"
            ]
        return []
    seq, hash_ = anchor
    if seq < 1:
        return [f"the run's anchor {hash_!r} is not 'seq:hash': it was altered"]
    if seq > top and not by_seq:
        return [
            f"the run's anchor records seq {seq} but its audit chain is empty: its events and "
            "head were deleted"
        ]
    if seq > top:
        return [
            f"the run's anchor records seq {seq} but the chain ends at seq {top}: events were "
            "cut from the tail (and the head reset)"
        ]
    if seq < top and seq not in by_seq:
        return [
            f"the run's anchor records seq {seq} but the chain goes on to seq {top}: events "
            "were added without the recorder"
        ]
    # An anchor behind a chain that links and is signed to its end is the gap a recorder
    # leaves when it stops between the append and the anchor's step (a Redis Cluster writes
    # the anchor second): no tamper, since every later event carries the audit key's MAC.
    if by_seq[seq].hash != hash_:
        return [
            f"seq {seq}: hash differs from the run's anchor: the chain was rewritten after "
            "that event was recorded"
        ]
    return []


def _anchor_lag(anchor: tuple[int, str] | None, by_seq: Mapping[int, AuditEvent]) -> list[str]:
    """A note when the run's anchor is behind a chain that otherwise verifies."""
    if anchor is None or not by_seq or anchor[0] >= max(by_seq):
        return []
    behind = max(by_seq) - anchor[0]
    return [
        f"the run's anchor is {behind} event{'s' if behind > 1 else ''} behind its chain "
        f"(seq {anchor[0]} of {max(by_seq)}): a recorder stopped between its append and the "
        "anchor's step (on a Redis Cluster its global index entries are lost with it); every "
        "later event is signed and linked, and the run's next event (or "
        "AuditLog.repair_index, run by 'carebound audit RUN --verify') brings the anchor up "
        "and indexes them"
    ]


def _checkpoint_problems(
    checkpoints: Sequence[AuditCheckpoint], by_seq: Mapping[int, AuditEvent]
) -> list[str]:
    """Exported checkpoints of the run against its chain: each must still be in it."""
    problems: list[str] = []
    top = max(by_seq) if by_seq else 0
    for point in checkpoints:
        when = point.exported_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        event = by_seq.get(point.seq)
        if event is None:
            problems.append(
                f"checkpoint exported {when} records seq {point.seq} but the chain ends at "
                f"seq {top}: events were removed since the export"
            )
        elif event.hash != point.hash:
            problems.append(
                f"seq {point.seq}: hash differs from the checkpoint exported {when}: the chain "
                "was rewritten since the export"
            )
    return problems
