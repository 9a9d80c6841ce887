"""A run's record: its model and how the run's hash stores it, field by field.

The hash keeps one field per record field, so every value stays short and the hash a listpack
(``carebound.state.runs`` has the run's other keys): text as is, free text over 64 bytes in
pieces, integers and datetimes as integers, None as an empty value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict
from redis.typing import EncodableT, FieldT

from carebound.state.keys import text

RunStatus = Literal["running", "paused", "waiting", "completed", "failed", "budget_exhausted",
                    "cancelled", "quarantined"]  # fmt: skip
FINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "failed", "budget_exhausted", "cancelled", "quarantined"}
)
"""Statuses no drive moves on from. ``quarantined``: its drives failed again and again (a bug
or bad data); nothing retries it until an operator has looked."""


class RunRecord(BaseModel):
    """The stored summary of a run."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent: str
    requester: str
    status: RunStatus
    policy: str
    created_at: datetime
    updated_at: datetime
    summary: str = ""
    pending_approval: str | None = None
    wait_reason: str | None = None
    wait_until: datetime | None = None
    failures: int = 0
    """Drives in a row that failed with an unexpected error (reset by one that settles)."""
    patient_ref: str | None = None
    """The case's patient as a FHIR reference (``Patient/<id>``: an id, not PHI), to search by."""
    trace: str | None = None
    """The run's trace context (W3C ``traceparent``): every drive's span joins this trace."""
    connectors: str | None = None
    """The identity of the connectors the run was started with (``simulator``,
    ``config:<digest>``; None: started before runs recorded it, or by a factory without one):
    only a process whose connectors have that identity drives it."""


RECORD_FIELDS: tuple[str, ...] = tuple(RunRecord.model_fields)
"""The run hash's record fields, in the order read (``run_id`` first)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DEFAULTED = frozenset(n for n, f in RunRecord.model_fields.items() if not f.is_required())
"""Fields an empty value leaves at the model's default (None, or "" for ``summary``)."""
_TIMES = frozenset({"created_at", "updated_at", "wait_until"})
"""The record's datetimes: stored as integer microseconds since the epoch (UTC)."""


_PIECE = 64  # bytes of a value a listpack hash takes (hash-max-listpack-value's default)
_LONG = ("summary", "wait_reason")
"""Free text: a value over ``_PIECE`` bytes is kept in pieces, under the field's name, then
``<name>:1``, ``<name>:2``, ``<name>:3`` (the last takes the rest)."""
_MORE = tuple(f"{name}:{i}" for name in _LONG for i in range(1, 4))
READ_FIELDS = RECORD_FIELDS + _MORE
"""The fields a read of the record asks for: the record's, then the pieces."""


def _pieces(value: str) -> list[str]:
    """``value`` in pieces of at most ``_PIECE`` UTF-8 bytes (whole characters), at most four."""
    out: list[str] = []
    while len(value.encode()) > _PIECE and len(out) < 3:
        piece = value[:_PIECE]
        while len(piece.encode()) > _PIECE:
            piece = piece[:-1]
        out.append(piece)
        value = value[len(piece) :]
    return [*out, value]


def record_fields(record: RunRecord) -> dict[FieldT, EncodableT]:
    """``record`` as the run hash's fields, one per record field, so every value stays short
    and the hash a listpack (one JSON field of the whole record made it a hashtable): text as
    is (free text in pieces, ``_LONG``; an update deletes the pieces not used), integers and
    datetimes (microseconds since the epoch) as integers, which a listpack keeps in a few
    bytes, and None as an empty value (no optional field of a record holds "")."""
    out: dict[FieldT, EncodableT] = {}
    for name in RECORD_FIELDS:
        value = getattr(record, name)
        if value is None:
            out[name] = ""
        elif name in _TIMES:
            out[name] = (value - _EPOCH) // _MICROSECOND
        elif name in _LONG:
            first, *more = _pieces(value)
            out[name] = first
            out.update({f"{name}:{i}": piece for i, piece in enumerate(more, 1)})
        else:
            out[name] = value
    return out


def unused_pieces(fields: dict[FieldT, EncodableT]) -> list[str]:
    """The piece fields (``_LONG``) that ``fields`` does not set: an update deletes them."""
    return [name for name in _MORE if name not in fields]


def changed_fields(
    record: RunRecord, stored: RunRecord | None
) -> tuple[dict[FieldT, EncodableT], list[str]]:
    """The run hash's fields to set, and its pieces to delete, to store ``record`` over
    ``stored``: the record the hash holds (every field it stores is ``stored``'s, as
    ``record_fields`` gives them), or None (unknown: every field is set and every unused
    piece deleted). A field ``stored`` has the same value of is left out, as is a piece it
    does not have (``run_id`` stays: a write sets one field at least); each field cost the
    server a string in the script that writes them."""
    fields = record_fields(record)
    unused = unused_pieces(fields)
    if stored is None:
        return fields, unused
    old = record_fields(stored)
    changed = {k: v for k, v in fields.items() if k == "run_id" or old.get(k) != v}
    return changed, [name for name in unused if name in old]


def queue_record(pipe: redis.client.Pipeline, key: str) -> None:
    """Queue the read of the record in the run hash ``key``; :func:`parse_record` parses it."""
    pipe.hmget(key, READ_FIELDS)


def parse_record(reply: Any) -> RunRecord | None:
    """The record read by :func:`queue_record`, or None when the run has none. A record that
    is not valid raises ``ValueError`` (pydantic's ``ValidationError``)."""
    if not reply or reply[0] is None:
        return None
    data: dict[str, Any] = {}
    for name, raw in zip(RECORD_FIELDS, reply, strict=False):
        if raw is None or (raw in (b"", "") and name in _DEFAULTED):
            continue  # None (or a field not stored): the model's default
        value = text(raw)
        data[name] = _EPOCH + int(value) * _MICROSECOND if name in _TIMES else value
    more = dict(zip(_MORE, reply[len(RECORD_FIELDS) :], strict=False))
    for name in _LONG:
        pieces = [more.get(f"{name}:{i}") for i in range(1, 4)]
        if name in data and pieces[0]:
            data[name] += "".join(text(p) for p in pieces if p)
    return RunRecord.model_validate(data)
