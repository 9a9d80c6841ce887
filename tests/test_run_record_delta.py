"""A settle writes only the record fields that changed since the lease's round trip read the
record (``RunStore.update(stored=...)``): each field cost the server's guarded write a string
or two, and most of a record stays as it was from one stop to the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from carebound.state.pipeline import Guard
from carebound.state.pipeline import run as run_pipeline
from carebound.state.run_record import RunRecord, changed_fields, record_fields, unused_pieces
from carebound.state.runs import RunStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LONG = "a wait reason of more than sixty-four bytes, kept in pieces in the run's hash " * 2


def _record(**changes: object) -> RunRecord:
    base = RunRecord(run_id="r1", agent="demo", requester="sam", status="paused",
                     policy="default@1", created_at=NOW, updated_at=NOW,
                     pending_approval="r1-1", patient_ref="Patient/1")  # fmt: skip
    return base.model_copy(update=changes)


def test_without_a_stored_record_every_field_is_set_and_every_unused_piece_deleted() -> None:
    record = _record()
    assert changed_fields(record, None) == (
        record_fields(record),
        unused_pieces(record_fields(record)),
    )


def test_only_the_fields_that_differ_are_set_and_only_pieces_stored_are_deleted() -> None:
    stored = _record(wait_reason=LONG)
    moved = NOW + timedelta(seconds=3)
    record = _record(status="waiting", pending_approval=None, updated_at=moved)
    fields, deleted = changed_fields(record, stored)
    assert fields == {"run_id": "r1", "status": "waiting", "pending_approval": "",
                      "updated_at": record_fields(record)["updated_at"],
                      "wait_reason": ""}  # fmt: skip
    assert deleted == ["wait_reason:1", "wait_reason:2"]  # the pieces LONG took, not summary's
    assert changed_fields(stored, stored) == ({"run_id": "r1"}, [])


def test_a_write_over_the_stored_record_reads_back_as_the_new_one(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RunStore(redis_client, prefix=key_prefix)
    lease = f"{key_prefix}:{{r1}}:lease"
    redis_client.hset(lease, "token", "7")
    held = Guard(lease, {"token": "7"})
    stored = _record(wait_reason=LONG, summary="short")
    store.update(stored)
    record = _record(status="waiting", summary=LONG, wait_reason="short again")

    def write(record: RunRecord, stored: RunRecord, guard: Guard) -> int:
        pipe_replies = run_pipeline(
            redis_client, lambda pipe: store.update(record, pipe=pipe, guard=guard, stored=stored)
        )
        return int(pipe_replies[0])

    assert write(record, stored, held) == 1
    assert store.get("r1") == record
    run_hash = f"{key_prefix}:{{r1}}:run"
    assert not redis_client.hexists(run_hash, "wait_reason:1")  # the long reason's pieces went
    assert redis_client.hexists(run_hash, "summary:1")
    # nothing changed: still one guarded write, refused once the lease is another's
    assert write(record, record, held) == 1
    assert write(record, record, Guard(lease, {"token": "6"})) == 0
    assert store.get("r1") == record
