"""The audit stream's compaction at settle rewrites a run's stream only when it may have a node
Redis over-allocated: a new node, or entries removed, since its last rewrite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from carebound import Approve, Runner, RunView
from carebound.audit import Actor
from carebound.state.pipeline import run as run_pipeline


def _dumps(client: redis.Redis, compact: Callable[[], list[Any]]) -> tuple[list[Any], int]:
    """``compact``'s replies and how many DUMP commands the server ran for it."""
    client.config_resetstat()
    replies = compact()
    stats: dict[str, Any] = client.info("commandstats")
    return replies, int(stats.get("cmdstat_dump", {}).get("calls", 0))


Parked = tuple[Runner, RunView, str, Callable[[], list[Any]]]


@pytest.fixture
def parked(
    make_runner: Callable[..., Runner],
    demo_case: dict[str, Any],
    demo_world: Any,
    redis_client: redis.Redis,
    key_prefix: str,
) -> Parked:
    """A parked demo run's runner and view, its audit stream's key and a call of the settle's
    compaction."""
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    log = runner._core.audit_log

    def compact() -> list[Any]:
        return run_pipeline(redis_client, lambda pipe: log.queue_compact(pipe, view.run_id))

    return runner, view, f"{key_prefix}:{{{view.run_id}}}:audit", compact


def test_a_compact_stream_is_not_rewritten_again(parked: Parked, redis_client: redis.Redis) -> None:
    runner, view, stream, compact = parked
    entries = redis_client.xrange(stream)
    size = redis_client.memory_usage(stream, samples=0)
    replies, dumps = _dumps(redis_client, compact)
    assert (replies, dumps) == ([2], 0)  # the park's settle left it compact
    assert redis_client.xrange(stream) == entries
    assert redis_client.memory_usage(stream, samples=0) == size

    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    assert runner.decide(request.approval_id, decision).run.status == "waiting"
    # the decide's events grew the last node in place: its settle did not dump the stream
    assert _dumps(redis_client, compact) == ([2], 0)
    assert runner.verify(view.run_id).ok


def test_a_new_node_or_a_removal_is_compacted(parked: Parked, redis_client: redis.Redis) -> None:
    _, _, stream, compact = parked
    # more than a node's 100 entries: Redis opens a new node, allocated at 4 KB
    for n in range(120):
        redis_client.xadd(stream, {"filler": str(n)})
    grown = redis_client.memory_usage(stream, samples=0) or 0
    entries = redis_client.xrange(stream)
    assert _dumps(redis_client, compact) == ([1], 1)
    assert redis_client.xrange(stream) == entries
    assert (redis_client.memory_usage(stream, samples=0) or 0) < grown - 1024
    assert _dumps(redis_client, compact) == ([2], 0)

    redis_client.xdel(stream, entries[-1][0])
    assert _dumps(redis_client, compact) == ([1], 1)
    assert _dumps(redis_client, compact) == ([2], 0)


def _append_compacting(runner: Runner, run_id: str, once: str) -> Callable[[Any], bool]:
    """An append of a status-like event that compacts the stream after it (as a settle's)."""
    log = runner._core.audit_log

    def queue(pipe: Any) -> Callable[[Any], bool]:
        return log.queue_record(
            pipe, run_id, once=once, time=datetime.now(UTC), actor=Actor(kind="system", id="t"),
            action="update", category="run", outcome="success", compact=True,
        )  # fmt: skip

    return queue


def test_an_append_that_compacts_rewrites_a_new_node_in_its_own_call(
    parked: Parked, redis_client: redis.Redis
) -> None:
    runner, view, stream, compact = parked
    for n in range(120):  # a new node, allocated at 4 KB
        redis_client.xadd(stream, {"filler": str(n)})
    grown = redis_client.memory_usage(stream, samples=0) or 0
    append = _append_compacting(runner, view.run_id, "status:test")

    def step() -> list[Any]:
        parse: list[Callable[[Any], bool]] = []
        replies = run_pipeline(redis_client, lambda pipe: parse.append(append(pipe)))
        return [parse[-1](replies[0]), len(redis_client.xrange(stream))]

    entries = len(redis_client.xrange(stream))
    replies, dumps = _dumps(redis_client, step)
    assert (replies, dumps) == ([True, entries + 1], 1)  # appended, then rewritten
    assert (redis_client.memory_usage(stream, samples=0) or 0) < grown - 1024
    assert _dumps(redis_client, compact) == ([2], 0)  # left compact, its shape recorded
    # a second append under the same once key appends nothing; the stream is still checked
    redis_client.xdel(stream, redis_client.xrange(stream)[-2][0])  # a filler
    assert _dumps(redis_client, step) == ([True, entries], 1)
    assert _dumps(redis_client, compact) == ([2], 0)
