"""A store's queued reads carry their own parsers: ``queue_x(pipe, ...)`` returns the function
that turns its reply into what ``x(...)`` returns, so one round trip can gather several stores'
reads without the caller knowing how any of them is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from carebound import Runner
from carebound._agent import RunEvent
from carebound.state.pipeline import Pipeline, run_parsed


def _paused(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> tuple[Runner, str, str]:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    return runner, view.run_id, view.pending.request.approval_id


def test_queued_reads_parse_to_what_the_direct_reads_return(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner, run_id, approval_id = _paused(make_runner, demo_case, demo_world)

    def queue(pipe: Pipeline) -> Any:
        parse_view = runner.approvals.queue_get(pipe, approval_id)  # two: the record, the request
        parsers = [
            runner.runs.queue_get(pipe, run_id),
            runner.ledger.queue_entries(pipe, run_id),
            runner.runs.queue_has_event(pipe, run_id),
        ]
        parse_pinned = runner.runs.queue_pinned(pipe, run_id)  # two commands: the hash, the case
        return lambda replies: [
            parse_view(replies[:2]),
            *(parse(reply) for parse, reply in zip(parsers, replies[2:5], strict=True)),
            parse_pinned(replies[5:]),
        ]

    view, record, entries, has_event, pinned = run_parsed(runner.client, queue)

    assert record == runner.runs.get(run_id)
    assert record is not None
    assert view == runner.approvals.get(approval_id)
    assert view is not None
    assert entries == runner.ledger.entries(run_id)
    assert has_event is False
    policy, case, _world = pinned
    assert policy is not None
    assert case is not None


def test_a_queued_read_of_nothing_parses_to_nothing(
    make_runner: Any, redis_client: redis.Redis
) -> None:
    runner: Runner = make_runner()

    def queue(pipe: Pipeline) -> Any:
        parse_view = runner.approvals.queue_get(pipe, "no-such-approval")
        parsers = [
            runner.runs.queue_get(pipe, "no-such-run"),
            runner.ledger.queue_entries(pipe, "no-such-run"),
            runner.runs.queue_has_event(pipe, "no-such-run"),
        ]
        parse_pinned = runner.runs.queue_pinned(pipe, "no-such-run")
        return lambda replies: [
            parse_view(replies[:2]),
            *(parse(reply) for parse, reply in zip(parsers, replies[2:5], strict=True)),
            parse_pinned(replies[5:]),
        ]

    assert run_parsed(redis_client, queue) == [None, None, [], False, (None, None, None)]


def test_a_queued_event_check_sees_a_delivered_event(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner, run_id, _ = _paused(make_runner, demo_case, demo_world)
    runner.runs.add_event(
        run_id, RunEvent(id="ev-1", kind="event", at=datetime(2026, 1, 1, tzinfo=UTC))
    )

    has_event = run_parsed(
        runner.client, lambda pipe: _first(runner.runs.queue_has_event(pipe, run_id))
    )

    assert has_event is True


def test_a_queued_head_read_primes_the_next_append(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner, run_id, _ = _paused(make_runner, demo_case, demo_world)
    fresh = make_runner()  # a process that has not seen the run's chain head
    assert fresh.audit_log._heads.get(run_id) != runner.audit_log._heads.get(run_id)

    run_parsed(fresh.client, lambda pipe: _first(fresh.audit_log.queue_head(pipe, run_id)))

    assert fresh.audit_log._heads.get(run_id) == runner.audit_log._heads.get(run_id)


def _first(parse: Any) -> Any:
    return lambda replies: parse(replies[0])
