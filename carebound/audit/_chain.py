"""The I/O-free half of the audit trail, shared by the sync and async logs.

Hashing, canonical JSON, the append script, reply parsing and chain verification live here;
``_log`` and ``_async_log`` only move bytes to and from Redis.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from pydantic import ValidationError
from redis.typing import EncodableT, FieldT

from carebound.audit._errors import AuditConflictError, AuditCorruptError
from carebound.audit._keyring import AuditKeyring, default_keyring
from carebound.audit._models import (
    DETAIL_CHECKED,
    GENESIS_HASH,
    Actor,
    AuditAction,
    AuditEvent,
    AuditIndexEntry,
    AuditOutcome,
    DetailValue,
    check_detail,
)
from carebound.state import audit_index
from carebound.state.audit_codec import pack_event, unpack_event
from carebound.state.keys import audit_index_key, audit_stream_key, global_key, run_key
from carebound.state.lua import script
from carebound.state.pipeline import Guard

MAX_ATTEMPTS = 100
"""Appends tried before giving up when other writers keep moving the chain head."""

EVENT_FIELD = "event"
"""Stream entry field holding the event's canonical JSON (``hash`` included), deflated
(``carebound.state.audit_codec``)."""

RECORD_SCRIPT = script("audit_record")
"""Appends one event to a run's chain: see ``carebound/state/lua/audit_record.lua``."""
RECORD_MANY_SCRIPT = script("audit_record_many")
"""Appends several events to one run's chain in one step, each as ``RECORD_SCRIPT`` appends
one (no guard): see ``carebound/state/lua/audit_record_many.lua``."""
ANCHOR_SCRIPT = script("audit_anchor")
"""Moves a run's anchor up to its new head, never back (``lua/audit_anchor.lua``)."""
COMPACT_SCRIPT = script("stream_compact")
"""Rewrites a run's stream with exact-size nodes (``lua/stream_compact.lua``)."""
COMPACT_SHAPE_FIELD = "shape"
"""Field of the chain head where ``COMPACT_SCRIPT`` keeps the stream's shape at its last
rewrite (``<nodes>:<entries ever removed>``)."""


def stream_key(prefix: str, run_id: str) -> str:
    """The run's audit stream: the source of truth."""
    return audit_stream_key(prefix, run_id)


def once_key(prefix: str, run_id: str) -> str:
    """Where runs recorded before kept their once-keys (a hash from a caller's once key to the
    stream entry it recorded): the append script still reads it; it marks a new once key in the
    run's head hash (``o:<key>``), one key less per run."""
    return run_key(prefix, run_id, "audit", "once")


DUPLICATE = (-1, "")
"""What ``record_reply`` returns when a once key was already recorded."""

GUARD_FAILED = (-2, "")
"""What ``record_reply`` returns when the append's guard did not hold (nothing written)."""


def head_key(prefix: str, run_id: str) -> str:
    """The run's chain head: a hash with fields ``seq`` and ``hash`` of the last event."""
    return run_key(prefix, run_id, "audit", "head")


def index_key(prefix: str) -> str:
    """The global audit index across runs."""
    return audit_index_key(prefix)


def anchors_key(prefix: str) -> str:
    """Every run's chain head (``seq:hash``) mirrored outside the run's keys: a hash by run
    id, written with each append, so cutting a run's tail and resetting its head shows. On a
    cluster it is written in a second step (``ANCHOR_SCRIPT``), which never moves it back."""
    return global_key(prefix, "audit", "anchors")


EVENT_MAC_CONTEXT = b"carebound-audit-event:"
"""What an event's MAC is computed over, before its hash (keeps event and checkpoint MACs
apart under one key)."""


def event_mac_message(hash_: str) -> bytes:
    """The message an event's ``mac`` authenticates: its ``hash``, which covers every other
    field, whatever fields the event has."""
    return EVENT_MAC_CONTEXT + hash_.encode()


def text(value: bytes | str) -> str:
    """A reply value as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
"""One encoder for every canonical JSON (``json.dumps`` with options builds one per call)."""


def canonical_json(data: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, ASCII only, no NaN: the same bytes for the same data."""
    return _CANONICAL.encode(data)


def _one_shot_encoder() -> Callable[[Mapping[str, Any]], str]:
    """``canonical_json`` for data without reference cycles (every event body), with the C
    encoder made once: ``JSONEncoder.encode`` builds one per call, which cost more than the
    encoding of an event. The same bytes (a property test compares both); where the C
    encoder is missing, ``canonical_json`` itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return canonical_json
    encoder = make(None, _CANONICAL.default, json.encoder.encode_basestring_ascii, None,
                   ":", ",", True, False, False)  # fmt: skip

    def encode(data: Mapping[str, Any]) -> str:
        return "".join(encoder(data, 0))

    return encode


encode_body = _one_shot_encoder()
"""``canonical_json`` of an event's body (data without reference cycles), faster."""


def format_time(value: datetime) -> str:
    """UTC ISO 8601 with microseconds and a ``Z``: one spelling per instant."""
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # strftime does not pad the year to four digits
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def sha256_hex(body: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``body``."""
    return hashlib.sha256(encode_body(body).encode()).hexdigest()


def event_body(event: AuditEvent) -> dict[str, Any]:
    """Every field of ``event`` except ``hash`` and ``mac``, in JSON form with the canonical
    time (``key_id`` only when set: unkeyed events never had it). Built field by field (every
    value is already JSON): ``model_dump(mode="json")`` gives the same dict but cost more than
    the rest of an event's construction (tests/test_audit_body.py compares them)."""
    actor = event.actor
    body: dict[str, Any] = {
        "run_id": event.run_id, "seq": event.seq, "time": format_time(event.time),
        "actor": {"kind": actor.kind, "id": actor.id, "role": actor.role},
        "patient_ref": event.patient_ref, "action": event.action, "category": event.category,
        "outcome": event.outcome, "detail": dict(event.detail), "prev_hash": event.prev_hash,
    }  # fmt: skip
    if event.key_id is not None:
        body["key_id"] = event.key_id
    return body


def event_json(event: AuditEvent) -> str:
    """The canonical JSON stored for ``event``, ``hash`` and ``mac`` included."""
    sealed: dict[str, Any] = {**event_body(event), "hash": event.hash}
    if event.mac is not None:
        sealed["mac"] = event.mac
    return canonical_json(sealed)


_SPLICEABLE = (
    {"action", "actor", "category", "detail", "key_id", "outcome", "patient_ref", "run_id", "time"},
    {"action", "actor", "category", "detail", "outcome", "patient_ref", "run_id", "time"},
)
"""The bodies (less ``seq`` and ``prev_hash``) whose stored text ``_with_seal`` builds."""


def _with_seal(hashed: str, hash_: str, mac: str | None, *, keyed: bool) -> str:
    """The canonical JSON of a body with ``hash`` and ``mac`` added, from ``hashed``, the
    canonical JSON of the body (one of ``_SPLICEABLE`` with ``seq`` and ``prev_hash``), without
    encoding it again. In key order ``hash`` comes right before ``key_id`` (``keyed``: the body
    has one) and ``mac`` right before ``outcome``; the last ``,"key_id":`` and ``,"outcome":``
    of the text are those keys (after them come only strings, a null and an int, and a quote
    inside a JSON string is escaped)."""
    outcome = hashed.rfind(',"outcome":')
    seal_hash = ',"hash":' + encode_basestring_ascii(hash_)
    seal_mac = ',"mac":' + ("null" if mac is None else encode_basestring_ascii(mac))
    if not keyed:
        return hashed[:outcome] + seal_hash + seal_mac + hashed[outcome:]
    key_id = hashed.rfind(',"key_id":', 0, outcome)
    return hashed[:key_id] + seal_hash + hashed[key_id:outcome] + seal_mac + hashed[outcome:]


class Sealed(NamedTuple):
    """A chained event as it is appended: its place in the chain, its hashes and its text."""

    run_id: str
    seq: int
    prev_hash: str
    hash: str
    mac: str | None
    stored: str
    """The event's canonical JSON, ``hash`` and ``mac`` included (``event_json`` of it)."""
    hashed: str
    """The canonical JSON ``hash`` is the sha256 of (without ``hash`` and ``mac``)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """An event's content before it is chained: everything but ``seq`` and the hashes."""

    event: AuditEvent
    """The content as validated, at ``seq`` 1 on the genesis hash: the chained events are
    copies of it with their place in the chain (not validated again)."""
    body: dict[str, Any] = field(default_factory=dict)
    """The JSON form hashed and stored, less ``seq``, ``prev_hash``, ``hash`` and ``mac`` (set
    by ``of``)."""

    @property
    def run_id(self) -> str:
        """The run the event belongs to."""
        return self.event.run_id

    @classmethod
    def of(
        cls,
        run_id: str,
        *,
        time: datetime,
        actor: Actor,
        action: AuditAction,
        category: str,
        outcome: AuditOutcome,
        patient_ref: str | None,
        detail: Mapping[str, DetailValue] | None,
        key_id: str,
    ) -> Draft:
        """Check the caller's input up front, so a bad event fails before any I/O; ``key_id``
        names the audit key that will sign it."""
        flat = dict(detail or {})
        check_detail(flat)
        e = AuditEvent.model_validate(  # validates every field, once
            {"run_id": run_id, "seq": 1, "time": time, "actor": actor, "patient_ref": patient_ref,
             "action": action, "category": category, "outcome": outcome, "detail": flat,
             "key_id": key_id, "prev_hash": GENESIS_HASH, "hash": GENESIS_HASH},
            context=DETAIL_CHECKED,
        )  # fmt: skip
        body = event_body(e)
        del body["seq"], body["prev_hash"]
        return cls(e, body)

    def chain(self, seq: int, prev_hash: str, keyring: AuditKeyring) -> AuditEvent:
        """The event at ``seq`` linked to ``prev_hash``, with its hash and MAC."""
        return self.chained(seq, prev_hash, keyring)[0]

    def chained(self, seq: int, prev_hash: str, keyring: AuditKeyring) -> tuple[AuditEvent, str]:
        """``chain``, and the canonical JSON stored for the event (``event_json`` of it)."""
        sealed = self.sealed(seq, prev_hash, keyring)
        return self.event_of(sealed), sealed.stored

    def sealed(self, seq: int, prev_hash: str, keyring: AuditKeyring) -> Sealed:
        """The event at ``seq`` linked to ``prev_hash`` as it is appended (hashed, signed, in
        its stored text), without building the :class:`AuditEvent` (``event_of`` does)."""
        body = {**self.body, "seq": seq, "prev_hash": prev_hash}
        hashed = encode_body(body)
        hash_ = hashlib.sha256(hashed.encode()).hexdigest()
        mac = keyring.sign(event_mac_message(hash_))
        if self.body.keys() in _SPLICEABLE:
            stored = _with_seal(hashed, hash_, mac, keyed="key_id" in self.body)
        else:
            body["hash"], body["mac"] = hash_, mac
            stored = encode_body(body)
        return Sealed(self.run_id, seq, prev_hash, hash_, mac, stored, hashed)

    def event_of(self, sealed: Sealed) -> AuditEvent:
        """The :class:`AuditEvent` of this draft as ``sealed`` chained it (not validated again:
        ``of`` validated the content, and the chain fields come from the chain)."""
        return self.event.model_copy(
            update={"seq": sealed.seq, "prev_hash": sealed.prev_hash, "hash": sealed.hash,
                    "mac": sealed.mac}
        )  # fmt: skip


def record_args(
    event: Sealed,
    once: str | None = None,
    *,
    guard: Guard | None = None,
    nkeys: int = 0,
    compact: bool = False,
) -> list[bytes | str]:
    """ARGV for ``RECORD_SCRIPT`` appending ``event`` after the head it was chained to; with
    ``guard``, ``nkeys`` is the length of :func:`record_keys`' keys; ``compact``: then compacted."""
    part = record_part(event, once)
    args = [*part[:5], GENESIS_HASH, part[5], event.run_id]
    if compact or guard is not None:
        args.append(COMPACT_SHAPE_FIELD if compact else "")
    if guard is not None:
        args += [str(nkeys), *guard.args()]
    return args


def record_part(event: Sealed, once: str | None = None) -> list[bytes | str]:
    """One event's six arguments to ``RECORD_MANY_SCRIPT`` (after :func:`record_many_args`)."""
    return [
        str(event.seq - 1),
        event.prev_hash,
        str(event.seq),
        event.hash,
        pack_event(event.stored, event.hash, hashed=event.hashed),
        once or "",
    ]


def record_many_args(run_id: str) -> list[str]:
    """The ARGV of ``RECORD_MANY_SCRIPT`` before its events' parts."""
    return [GENESIS_HASH, run_id]


def record_keys(
    prefix: str, run_id: str, *, with_index: bool, guard: Guard | None = None
) -> list[str]:
    """KEYS for ``RECORD_SCRIPT``; ``with_index`` writes the global index and the run's anchor
    in the same step (only on a single server: on a cluster they live in another slot)."""
    keys = [stream_key(prefix, run_id), head_key(prefix, run_id), once_key(prefix, run_id)]
    if with_index:
        keys += [index_key(prefix), anchors_key(prefix)]
    if guard is not None:
        keys.append(guard.key)
    return keys


def record_reply(reply: Sequence[Any]) -> tuple[int, str] | None:
    """None if the append went through, ``DUPLICATE`` if its once key was already recorded,
    ``GUARD_FAILED`` if its guard did not hold, else the current head ``(seq, hash)`` to
    retry on."""
    if int(reply[0]) == 1:
        return None
    if int(reply[0]) == 2:
        return DUPLICATE
    if int(reply[0]) == 3:
        return GUARD_FAILED
    return int(text(reply[1])), text(reply[2])


def backoff_s(attempt: int) -> float:
    """A short random pause once a writer has lost the race a few times in a row."""
    return 0.0 if attempt < 4 else random.uniform(0, 0.0005 * attempt)


def conflict_error(run_id: str) -> AuditConflictError:
    """The error raised after ``MAX_ATTEMPTS`` lost races."""
    return AuditConflictError(
        f"could not append to the audit chain of run {run_id!r} after {MAX_ATTEMPTS} attempts",
        hint="too many processes are recording to this run at once; one writer per run "
        "(the run lease) keeps contention low",
    )


def index_fields(event: Sealed, reply: Sequence[Any]) -> dict[FieldT, EncodableT]:
    """Fields of the event's entry in the global index (a pointer to its entry in the run's
    stream, whose id the append script's ``reply`` holds)."""
    return audit_index.pointer_fields(event.run_id, event.seq, text(reply[1]))


def anchor_field(event: Sealed) -> tuple[str, str]:
    """The run's field and value in the anchors hash once ``event`` heads its chain."""
    return event.run_id, f"{event.seq}:{event.hash}"


def anchor_args(event: Sealed) -> list[str | int]:
    """ARGV of ``ANCHOR_SCRIPT`` (KEYS: ``anchors_key``) once ``event`` heads its chain: the
    anchor moves to it unless it already records that seq or a later one."""
    run_id, value = anchor_field(event)
    return [run_id, event.seq, value]


def duplicate_anchor_args(run_id: str, reply: Sequence[Any]) -> list[str | int] | None:
    """ARGV of ``ANCHOR_SCRIPT`` for the head a DUPLICATE reply carries (the event was
    recorded before, perhaps by a send whose reply was lost), or None for an empty chain."""
    seq = int(text(reply[1])) if len(reply) > 2 else 0
    if seq < 1:
        return None
    return [run_id, seq, f"{seq}:{text(reply[2])}"]


class HeadCache:
    """The last chain head this process wrote per run, so an append usually takes one trip."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> tuple[int, str]:
        """The cached head of ``run_id``, or the empty chain's head."""
        with self._lock:
            return self._heads.get(run_id, (0, GENESIS_HASH))

    def put(self, run_id: str, seq: int, hash_: str) -> None:
        """Remember that ``run_id``'s head is at least ``seq``."""
        with self._lock:
            if self._heads.get(run_id, (0, ""))[0] < seq:
                self._heads[run_id] = (seq, hash_)
            self._heads.move_to_end(run_id)
            while len(self._heads) > self._size:
                self._heads.popitem(last=False)

    def forget(self, run_id: str) -> None:
        """Drop the cached head of ``run_id`` (it may be wrong: the next append re-reads it)."""
        with self._lock:
            self._heads.pop(run_id, None)


def parse_event(raw: bytes | str) -> AuditEvent:
    """Read a stored event (no hash check: that is ``verify_chain``'s job)."""
    try:
        return AuditEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise AuditCorruptError(
            f"stored audit entry is not a valid AuditEvent: {exc.errors()[0]['msg']}",
            hint="run AuditLog.verify(run_id) to see which entries are damaged",
        ) from exc


def entry_event(
    fields: Mapping[bytes | str, bytes | str] | Sequence[bytes | str] | None,
) -> bytes | str:
    """The event JSON of a stream entry (its fields as a mapping, or as the flat list a
    cluster transaction returns unparsed), inflated from its stored form (``audit_codec``).

    Raises:
        AuditCorruptError: the entry has no event, or its event does not inflate.
    """
    if isinstance(fields, Sequence):
        fields = dict(zip(fields[::2], fields[1::2], strict=False))
    for key, value in (fields or {}).items():
        if text(key) == EVENT_FIELD:
            try:
                return unpack_event(value)
            except ValueError as exc:
                raise AuditCorruptError(
                    str(exc), hint="run AuditLog.verify(run_id) to see which entries are damaged"
                ) from exc
    raise AuditCorruptError(
        f"stream entry has no {EVENT_FIELD!r} field",
        hint="run AuditLog.verify(run_id) to see which entries are damaged",
    )


def check_limit(limit: int) -> None:
    """Refuse a page size that Redis would not treat as one."""
    if limit < 1:
        raise ValueError(f"recent() needs a limit of at least 1, got {limit}")


def index_entries(resolved: Sequence[tuple[str, bytes | str]]) -> list[AuditIndexEntry]:
    """Resolved global index entries (``audit_index.resolve``) as typed entries, oldest first."""
    return [
        AuditIndexEntry(entry_id=entry_id, event=parse_event(event)) for entry_id, event in resolved
    ]


class LogBase:
    """What ``AuditLog`` holds besides its client: the key prefix, the audit keys (read on
    first use), the append script and the chain-head cache."""

    def __init__(self, *, prefix: str, keyring: AuditKeyring | None, one_step: bool) -> None:
        self._prefix = prefix
        self._keyring = keyring
        self._append = RECORD_SCRIPT
        self._heads = HeadCache()
        self._one_step = one_step
        """The append and its index copy go in one step (not on a Redis Cluster)."""

    @property
    def keyring(self) -> AuditKeyring:
        """The audit keys that sign and verify this log's events."""
        if self._keyring is None:
            self._keyring = default_keyring()
        return self._keyring

    def _draft(self, run_id: str, **fields: Any) -> Draft:
        """An event's draft from a log method's fields (checked up front, see ``Draft.of``),
        to be signed with this log's signing key."""
        return Draft.of(run_id, key_id=self.keyring.signing_id, **fields)
