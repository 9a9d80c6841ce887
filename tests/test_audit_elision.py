"""An event is stored without its ``hash`` when the reader computes it again; the writer checks
that it does. Given the text it just hashed (``hashed``), the writer does not hash it again: the
stored bytes are the same, and a text that is not the event's is hashed as before."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebound.audit import Actor, AuditKeyring
from carebound.audit._chain import Draft, Sealed, record_args
from carebound.state import audit_codec
from carebound.state.audit_codec import unpack_event

KEYRING = AuditKeyring.of("k9:a-key-for-this-test-only")
DETAIL = st.dictionaries(
    st.sampled_from(["hash", "mac", "key_id", "outcome", "x"]),
    st.one_of(st.text(max_size=30), st.integers(), st.none()),
    max_size=5,
)


def _sealed(detail: dict[str, Any]) -> Sealed:
    draft = Draft.of(
        "run-h", key_id=KEYRING.signing_id, time=datetime(2026, 1, 2, tzinfo=UTC),
        actor=Actor(kind="agent", id="demo"), action="event", category="system",
        outcome="success", patient_ref="Patient/pat-1", detail=detail,
    )  # fmt: skip
    return draft.sealed(3, "a" * 64, KEYRING)


class _CountingSha:
    """Stands in for ``hashlib`` in the codec: counts sha256 calls."""

    def __init__(self) -> None:
        self.calls = 0

    def sha256(self, data: bytes) -> Any:
        self.calls += 1
        return hashlib.sha256(data)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _CountingSha:
    counting = _CountingSha()
    monkeypatch.setattr(audit_codec, "hashlib", SimpleNamespace(sha256=counting.sha256))
    return counting


@settings(max_examples=100, deadline=None)
@given(detail=DETAIL)
def test_the_hashed_text_gives_the_same_stored_bytes(detail: dict[str, Any]) -> None:
    sealed = _sealed(detail)
    assert hashlib.sha256(sealed.hashed.encode()).hexdigest() == sealed.hash
    given_hashed = audit_codec.pack_event(sealed.stored, sealed.hash, hashed=sealed.hashed)
    assert given_hashed == audit_codec.pack_event(sealed.stored, sealed.hash)
    assert isinstance(given_hashed, bytes) and given_hashed[:1] == audit_codec.ELIDED_MARKER
    assert unpack_event(given_hashed) == sealed.stored.encode()


def test_the_append_does_not_hash_the_event_twice(counted: _CountingSha) -> None:
    sealed = _sealed({"tool": "send_fax"})
    stored = record_args(sealed)[4]
    assert counted.calls == 0
    assert stored == audit_codec.pack_event(sealed.stored, sealed.hash)
    assert counted.calls == 1  # without the hashed text, the check hashes it


def test_a_hashed_text_that_is_not_the_events_is_not_trusted(counted: _CountingSha) -> None:
    sealed = _sealed({"tool": "send_fax"})
    other = _sealed({"tool": "send_mail"})
    packed = audit_codec.pack_event(sealed.stored, sealed.hash, hashed=other.hashed)
    assert counted.calls == 1
    assert packed == audit_codec.pack_event(sealed.stored, sealed.hash)
    assert unpack_event(packed) == sealed.stored.encode()
