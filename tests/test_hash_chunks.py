"""A hold's request is kept in short fields (carebound.state.hash_chunks) so its approval record
stays in Redis's compact listpack encoding (issue 17, footprint); holds stored whole still read,
and an edit of a two-person hold replaces every chunk of the request it replaces (real Redis)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from carebound import Approve, Edit
from carebound.approvals import ApprovalRequest
from carebound.state.hash_chunks import CHUNK, MAX_CHUNKS, chunk_fields, chunk_names, join_chunks
from tests.test_decisions import _two_person_pack

ROLE = "intake_coordinator"


def _record(runner: Any, approval_id: str) -> str:
    run_id = approval_id.rsplit("-", 1)[0]
    return f"{runner.prefix}:{{{run_id}}}:approval:{approval_id}"


def _stored(client: redis.Redis, key: str) -> dict[str, bytes]:
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): v for k, v in raw.items()}


@pytest.fixture
def held(make_runner: Any, demo_case: Any, demo_world: Any) -> tuple[Any, ApprovalRequest, str]:
    """A demo run parked on its hold: (runner, the hold's request, its approval record key)."""
    runner = make_runner()
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    return runner, request, _record(runner, request.approval_id)


def test_a_parked_demo_hold_is_a_listpack_hash_and_reads_back(
    held: tuple[Any, ApprovalRequest, str], redis_client: redis.Redis
) -> None:
    runner, request, key = held
    stored = _stored(redis_client, key)
    assert "request" not in stored and len(stored["request.0"]) == CHUNK  # in chunks
    assert all(len(v) <= CHUNK for v in stored.values())
    assert redis_client.object("encoding", key) == b"listpack"
    assert runner.approval(request.approval_id).request == request
    [listed] = runner.pending()
    assert listed.request == request


def test_a_hold_stored_whole_before_still_reads(
    held: tuple[Any, ApprovalRequest, str], redis_client: redis.Redis
) -> None:
    runner, request, key = held
    stored = _stored(redis_client, key)
    whole = b"".join(stored[name] for name in chunk_names("request") if name in stored)
    chunks = [name for name in stored if name.startswith("request.")]
    if chunks:
        redis_client.hdel(key, *chunks)
    redis_client.hset(key, "request", whole)  # the form every hold had before
    assert runner.approval(request.approval_id).request == request
    [listed] = runner.pending()
    assert listed.request == request
    done = runner.decide(
        request.approval_id, Approve(reviewer="casey", role=ROLE, args_hash=request.args_hash)
    )
    assert done.outcome == "decided"


def test_an_edit_of_a_two_person_hold_replaces_every_chunk(
    make_runner: Any, demo_case: Any, demo_world: Any, redis_client: redis.Redis
) -> None:
    runner = make_runner(policy=_two_person_pack())
    request = runner.start("demo", demo_case, requester="sam", world=demo_world).pending.request
    key = _record(runner, request.approval_id)
    # A long note (more chunks), then a short one (fewer chunks: none of the long one's is left).
    for note in ("Edited by casey. " * 40, "Short."):
        current = runner.approval(request.approval_id).request
        args = {**current.args, "note": note}
        edit = Edit(reviewer="casey", role=ROLE, args_hash=current.args_hash, args=args)
        assert runner.decide(request.approval_id, edit).outcome == "awaiting_second_approver"
        assert runner.approval(request.approval_id).request.args["note"] == note
        [listed] = runner.pending()
        assert listed.request.args["note"] == note
    stored = _stored(redis_client, key)
    names = [n for n in chunk_names("request") if n in stored]
    assert names == list(chunk_names("request")[1 : len(names) + 1])  # no gap, nothing stale
    whole = b"".join(stored[n] for n in names).decode()
    assert chunk_fields("request", whole)[::2] == names


def test_chunks_join_back_to_the_value() -> None:
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, CHUNK * MAX_CHUNKS):
        value = "".join(chr(33 + i % 90) for i in range(size))
        pairs = chunk_fields("f", value)
        assert all(len(v) <= CHUNK for v in pairs[1::2])
        by_name = dict(zip(pairs[::2], pairs[1::2], strict=True))
        replies = [by_name.get(name) for name in chunk_names("f")]
        assert join_chunks(replies) == value
        assert join_chunks([r.encode() if r is not None else None for r in replies]) == (
            value.encode()
        )
    too_long = "x" * (CHUNK * MAX_CHUNKS + 1)
    assert chunk_fields("f", too_long) == ["f", too_long]  # stored whole, as before
    accented = "é" * (CHUNK + 5)
    assert chunk_fields("f", accented) == ["f", accented]  # a chunk never cuts a character
    assert join_chunks([None] * MAX_CHUNKS) is None
