"""``event_body`` builds an event's hashed JSON form field by field: it must stay what pydantic's
``model_dump(mode="json")`` gives (the stored hashes of every chain depend on it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from carebound.audit import Actor, AuditDetailError, AuditEvent, AuditKeyring
from carebound.audit._chain import Draft, event_body, format_time
from carebound.audit._models import GENESIS_HASH

_TEXT = st.text(min_size=1, max_size=40)
_DETAIL = st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=200),
    max_size=8,
)


def _dumped(event: AuditEvent) -> dict[str, Any]:
    """The body as pydantic dumps it (what ``event_body`` returned before)."""
    body = event.model_dump(mode="json", exclude={"hash", "mac"})
    body["time"] = format_time(event.time)
    if body["key_id"] is None:
        del body["key_id"]
    return body


@settings(max_examples=200, deadline=None)
@given(
    run_id=_TEXT,
    seq=st.integers(1, 10**9),
    when=st.datetimes(
        min_value=datetime(1, 1, 2), timezones=st.just(timezone(timedelta(hours=-5)))
    ),
    kind=st.sampled_from(["agent", "person", "system"]),
    actor_id=_TEXT,
    role=st.none() | _TEXT,
    patient_ref=st.none() | st.sampled_from(["Patient/123", "Patient/p-1/_history/2"]),
    action=st.sampled_from(["event", "decision", "effect", "hold"]),
    outcome=st.sampled_from(["success", "pending", "held", "failed"]),
    detail=_DETAIL,
    key_id=st.none() | st.text(min_size=1, max_size=32),
    prev_hash=st.sampled_from([GENESIS_HASH, "ab" * 32]),
)
def test_event_body_is_the_json_dump(
    run_id: str,
    seq: int,
    when: datetime,
    kind: Any,
    actor_id: str,
    role: str | None,
    patient_ref: str | None,
    action: Any,
    outcome: Any,
    detail: dict[str, Any],
    key_id: str | None,
    prev_hash: str,
) -> None:
    event = AuditEvent(
        run_id=run_id,
        seq=seq,
        time=when,
        actor=Actor(kind=kind, id=actor_id, role=role),
        patient_ref=patient_ref,
        action=action,
        category="referral",
        outcome=outcome,
        detail=detail,
        key_id=key_id,
        prev_hash=prev_hash,
        hash="cd" * 32,
        mac=None if key_id is None else "ef" * 32,
    )
    assert event_body(event) == _dumped(event)


def test_event_body_is_the_json_dump_of_an_event_read_back() -> None:
    stored = AuditEvent(
        run_id="run-1",
        seq=3,
        time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        actor=Actor(kind="person", id="casey", role="intake_coordinator"),
        action="decision",
        category="referral",
        outcome="success",
        detail={"approval": "a-1", "count": 2, "ratio": 0.5, "ok": True, "none": None},
        key_id="k1",
        prev_hash=GENESIS_HASH,
        hash="cd" * 32,
        mac="ef" * 32,
    ).model_dump_json()
    event = AuditEvent.model_validate_json(stored)
    assert event_body(event) == _dumped(event)


def test_the_fields_event_body_writes_are_pinned() -> None:
    """A field added to the models must be added to ``event_body`` too (it would be missing
    from every event's hash): this list fails first."""
    assert set(AuditEvent.model_fields) == {
        "run_id", "seq", "time", "actor", "patient_ref", "action", "category", "outcome",
        "detail", "key_id", "prev_hash", "hash", "mac",
    }  # fmt: skip
    assert set(Actor.model_fields) == {"kind", "id", "role"}


def test_a_chained_event_is_the_validated_event_at_its_place() -> None:
    """``Draft.chain`` copies the validated content with the chain's fields (no validation
    again): the same event as validating every field, every field set."""
    keyring = AuditKeyring.of("k9:a-key-for-this-test-only")
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "time": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
        "actor": Actor(kind="person", id="casey", role="intake_coordinator"),
        "action": "decision",
        "category": "referral",
        "outcome": "success",
        "patient_ref": "Patient/p-1",
        "detail": {"approval": "a-1", "count": 2},
        "key_id": keyring.signing_id,
    }
    draft = Draft.of(**fields)
    first = draft.chain(4, "ab" * 32, keyring)
    second = draft.chain(5, first.hash, keyring)
    for seq, event, prev in ((4, first, "ab" * 32), (5, second, first.hash)):
        validated = AuditEvent(**fields, seq=seq, prev_hash=prev, hash=event.hash, mac=event.mac)
        assert event == validated
        assert event.model_fields_set == set(AuditEvent.model_fields)
        assert event.time == validated.time and event.time.tzinfo == UTC
    assert first.hash != second.hash
    assert draft.event.seq == 1  # the draft is not moved by chaining it


def test_a_drafts_detail_is_checked_once_and_an_events_still_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Draft.of`` checks the detail itself (so a bad one raises ``AuditDetailError``) and the
    model does not check it again; an event validated any other way still checks it."""
    from carebound.audit import _chain, _models

    calls: list[int] = []
    check = _models.check_detail

    def counted(detail: dict[str, Any]) -> None:
        calls.append(len(detail))
        check(detail)

    monkeypatch.setattr(_chain, "check_detail", counted)
    monkeypatch.setattr(_models, "check_detail", counted)
    Draft.of(
        "run-1", time=datetime(2026, 1, 2, tzinfo=UTC), actor=Actor(kind="agent", id="demo"),
        action="event", category="system", outcome="success", patient_ref=None,
        detail={"a": 1}, key_id="k1",
    )  # fmt: skip
    assert calls == [1]
    monkeypatch.undo()
    with pytest.raises(ValidationError, match="limited to 200"):
        AuditEvent(
            run_id="run-1", seq=1, time=datetime(2026, 1, 2, tzinfo=UTC),
            actor=Actor(kind="agent", id="demo"), action="event", category="system",
            outcome="success", detail={"a": "x" * 201}, prev_hash=GENESIS_HASH,
            hash=GENESIS_HASH,
        )  # fmt: skip
    with pytest.raises(AuditDetailError):
        Draft.of(
            "run-1", time=datetime(2026, 1, 2, tzinfo=UTC), actor=Actor(kind="agent", id="d"),
            action="event", category="system", outcome="success", patient_ref=None,
            detail={"a": "x" * 201}, key_id="k1",
        )  # fmt: skip
