"""How an audit event's canonical JSON is stored in a run's stream: deflated against a preset
dictionary of what every event repeats (its field names, the actor kinds, the actions and
outcomes, the permission check's wording), kept as the raw deflate stream after the byte
``\x01`` (:data:`BINARY_MARKER`): the audit log reads through a client that does not decode
replies (``carebound._wire.binary_client``). A demo run's events shrink to about 35% of their
JSON. Events written before in text (``~z1:`` then base64 or base85) still read.

The hash chain is computed over the canonical JSON, never over this form: reading inflates
the exact bytes that were hashed. Entries stored as plain JSON (before this encoding, or
written by hand) read as they are. The dictionary is part of the stored format: a new one
needs a new marker, and the old one stays for reading.
"""

from __future__ import annotations

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


def pack_event(event_json: str) -> bytes | str:
    """The stored form of an event's canonical JSON (bytes; the JSON itself in the rare case
    deflating does not make it shorter)."""
    return deflate.pack_raw(event_json, marker=BINARY_MARKER, dictionary=_DICTIONARY)


def unpack_event(stored: bytes | str) -> bytes | str:
    """An event's canonical JSON from its stored form (plain JSON is returned as it is), as
    bytes or text like ``stored``.

    Raises:
        ValueError: the value carries a marker but does not inflate.
    """
    if isinstance(stored, bytes):
        if stored[:1] == BINARY_MARKER:
            return deflate.inflate(stored[1:], dictionary=_DICTIONARY)
    elif stored[:1] == "\x01":  # read by a decoding client, and it happened to be UTF-8
        return deflate.inflate(stored[1:].encode(), dictionary=_DICTIONARY).decode()
    return deflate.unpack(stored, marker=MARKER, dictionary=_DICTIONARY)
