"""An inbox page reads the index page and its records only: a stale index entry (its hold
decided) is skipped and dropped, the page still fills up, and a client that decodes replies
to text lists the same page as one that reads bytes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis

from carebound import Approve, Runner
from carebound.state.keys import inbox_key

ROLE = "intake_coordinator"


def _park(runner: Runner, case: Any, world: Any, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        view = runner.start("demo", case, requester="sam", world=world)
        assert view.pending is not None, view.record
        ids.append(view.pending.request.approval_id)
        runner.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    return ids


def test_a_stale_entry_is_skipped_dropped_and_the_page_still_fills(
    make_runner: Any, demo_case: Any, demo_world: Any, redis_client: redis.Redis, key_prefix: str
) -> None:
    runner = make_runner()
    ids = _park(runner, demo_case, demo_world, 4)
    decided = runner.approval(ids[0]).request
    runner.decide(ids[0], Approve(reviewer="casey", role=ROLE, args_hash=decided.args_hash))
    index = inbox_key(key_prefix, "role", ROLE)
    redis_client.zadd(index, {ids[0]: 0})  # left behind, most urgent of all

    page = runner.pending(role=ROLE, limit=3)

    assert [v.request.approval_id for v in page] == ids[1:]
    assert all(v.status == "pending" and v.record is None for v in page)
    assert redis_client.zscore(index, ids[0]) is None
    assert [v.request.approval_id for v in runner.pending(role=ROLE, limit=2, offset=1)] == ids[2:]


def test_a_decoding_client_lists_the_same_page(
    make_runner: Any, demo_case: Any, demo_world: Any, redis_url: str, key_prefix: str
) -> None:
    runner = make_runner()
    _park(runner, demo_case, demo_world, 3)
    text_client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        reader = Runner(text_client, prefix=key_prefix)
        assert reader.pending(role=ROLE) == runner.pending(role=ROLE)
        assert reader.pending(agent="demo", limit=1) == runner.pending(agent="demo", limit=1)
    finally:
        text_client.close()
