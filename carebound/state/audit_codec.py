"""How an audit event's canonical JSON is stored in a run's stream: deflated against a preset
dictionary of what every event repeats (its field names, the actor kinds, the actions and
outcomes, the permission check's wording), kept as the raw deflate stream after the byte
``\x01`` (:data:`BINARY_MARKER`): the audit log reads through a client that does not decode
replies (``carebound._wire.binary_client``). A demo run's events shrink to about 35% of their
JSON. Events written before in text (``~z1:`` then base64 or base85) still read.

The hash chain is computed over the canonical JSON, never over this form: reading inflates
the exact bytes that were hashed. An event is kept without its ``hash`` member (after the byte
``\x02``, :data:`ELIDED_MARKER`): the reader computes it again from the rest, which the ``mac``
(it signs the hash) and the next event's ``prev_hash`` check as before. Entries stored as
plain JSON (before this encoding, or written by hand) read as they are. The dictionary is part
of the stored format: a new one needs a new marker, and the old one stays for reading.
"""

from __future__ import annotations

import hashlib
from typing import cast

from carebound.state import deflate

MARKER = "~z1:"
"""Starts an event deflated and then written as text (base64 or base85: events written before
:data:`BINARY_MARKER`; no JSON text starts with ``~``)."""

BINARY_MARKER = b"\x01"
"""Starts an event kept as the raw deflate stream (no JSON text starts with it)."""

_DICTIONARY = (
    b'hold","decision","deny","budget_stop","update","execute","create","model_call",'
    b'"refused","failed","held","denied","pending","person","system","demographics",'
    b'"referral-documents","coverage","reconcile","attempt":1,"channel":"fax","items":1,'
    b'"approval_id":"","args_hash":"","task":"docreq-","agent":"referral_intake",'
    b'"policy":"default@","previous":"running","status":"waiting"},'
    b'"outcome":"success","patient_ref":null,"prev_hash":"'
    b'0000000000000000000000000000000000000000000000000000000000000000","run_id":"r",'
    b'"seq":1,"time":"2026-01-01T00:00:00.000000Z"}'
    b'{"action":"read","actor":{"id":"referral_intake","kind":"agent","role":null},'
    b'"category":"referral-intake","detail":{"effect":"read","key":"r:list_documents_on_file:",'
    b'"tool":"list_documents_on_file"},"hash":"","key_id":"local-","mac":"'
    b'","outcome":"success","patient_ref":"Patient/","prev_hash":"","run_id":"r","seq":'
    b'{"action":"effect","actor":{"id":"","kind":"agent","role":null},"category":"",'
    b'"detail":{"decided":null,"effect":"reversible","effect":"external","key":"r:'
    b'{"action":"permission_check","actor":{"id":"","kind":"agent","role":null},'
    b'"category":"referral-intake","detail":{"reason":"granted by scope \'ehr:Patient.read\'",'
    b'"scope":"ehr:Patient.read","tool":"'
)


ELIDED_MARKER = b"\x02"
"""Starts an event kept like :data:`BINARY_MARKER` without its ``hash``, which the reader
computes again (see :func:`pack_event`)."""

_HASH = b',"hash":"'
_MAC = b',"mac":'
_KEY_ID = b',"key_id":'


def pack_event(
    event_json: str, hash_: str | None = None, *, hashed: str | None = None
) -> bytes | str:
    """The stored form of an event's canonical JSON (bytes; the JSON itself in the rare case
    deflating does not make it shorter).

    With ``hash_`` (the event's hash), the text is kept without its ``"hash"`` member when the
    reader can compute it again: the hash is the sha256 of the text without ``hash`` and
    ``mac``, so storing it adds nothing the ``mac`` (which signs the hash) and the next event's
    ``prev_hash`` do not already check; about a sixth of a stored event. The text is elided only
    when :func:`unpack_event` gives it back exactly (checked here), else kept whole.
    ``hashed``: the text ``hash_`` is the sha256 of (the event without ``hash`` and ``mac``,
    which the caller just hashed); when the text without them is it, the check does not hash
    it again."""
    data = event_json.encode()
    if hash_ is not None:
        seal = _HASH + hash_.encode() + b'"'
        at = data.rfind(_HASH)
        if at > 0 and data.startswith(seal, at):
            elided = data[:at] + data[at + len(seal) :]
            known = None if hashed is None else (hashed.encode(), hash_)
            if _with_hash(elided, known) == data:
                packed = deflate.pack_raw(
                    elided.decode(), marker=ELIDED_MARKER, dictionary=_DICTIONARY
                )
                if isinstance(packed, bytes):
                    return packed
    return deflate.pack_raw(event_json, marker=BINARY_MARKER, dictionary=_DICTIONARY)


def _with_hash(elided: bytes, known: tuple[bytes, str] | None = None) -> bytes | None:
    """The canonical JSON of an event from its text without ``hash``: the sha256 of the text
    without ``mac`` too, put back right before ``key_id`` (or ``mac`` when there is none). The
    last ``,"mac":`` and ``,"key_id":`` of the text are the event's own (only scalars follow
    them, and a quote inside a JSON string is escaped). None: the text has no ``mac``.
    ``known``: a text and its sha256 (hex), taken as the hash when the text without ``mac``
    is that text."""
    mac = elided.rfind(_MAC)
    if mac < 0:
        return None
    value = mac + len(_MAC)
    end = value + 4 if elided.startswith(b"null", value) else elided.find(b'"', value + 1) + 1
    if end <= value:
        return None
    unsigned = elided[:mac] + elided[end:]
    if known is not None and unsigned == known[0]:
        hash_ = known[1].encode()
    else:
        hash_ = hashlib.sha256(unsigned).hexdigest().encode()
    key_id = elided.rfind(_KEY_ID, 0, mac)
    at = key_id if key_id >= 0 else mac
    return elided[:at] + _HASH + hash_ + b'"' + elided[at:]


def unpack_event(stored: bytes | str) -> bytes | str:
    """An event's canonical JSON from its stored form (plain JSON is returned as it is), as
    bytes or text like ``stored``.

    Raises:
        ValueError: the value carries a marker but does not inflate.
    """
    if isinstance(stored, str):
        if stored[:1] not in ("\x01", "\x02"):
            return deflate.unpack(stored, marker=MARKER, dictionary=_DICTIONARY)
        # read by a decoding client, and it happened to be UTF-8
        return cast(bytes, unpack_event(stored.encode())).decode()
    head = stored[:1]
    if head == BINARY_MARKER:
        return deflate.inflate(stored[1:], dictionary=_DICTIONARY)
    if head == ELIDED_MARKER:
        whole = _with_hash(deflate.inflate(stored[1:], dictionary=_DICTIONARY))
        if whole is None:
            raise ValueError("stored value does not inflate: an elided event without a mac")
        return whole
    return deflate.unpack(stored, marker=MARKER, dictionary=_DICTIONARY)
