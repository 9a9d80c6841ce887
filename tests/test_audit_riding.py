"""Audit appends that ride ahead of the next round trip (``record(ride=True)`` inside
``carebound._wire.riding``, what a graph segment does, issue 17): no round trip of their own, the
chain intact and in order, and each event once, even when one did not land as sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from carebound._wire import riding, shared_wire
from carebound.audit import Actor, AuditLog
from tests.test_round_trips import Counted

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind="agent", id="referral_intake", role=None)


@pytest.fixture
def counted(redis_url: str) -> Iterator[Counted]:
    c = Counted(redis_url)
    yield c
    c.client.close()


def _record(log: AuditLog, run_id: str, step: int, *, once: str | None = None) -> Any:
    return log.record(
        run_id,
        time=T0 + timedelta(seconds=step),
        actor=AGENT,
        action="permission_check",
        category="referral-intake",
        outcome="success",
        detail={"tool": "list_documents_on_file", "step": step},
        once=once,
        ride=True,
    )


def _steps(log: AuditLog, run_id: str) -> list[int]:
    return [int(e.detail["step"]) for e in log.events(run_id)]  # type: ignore[arg-type]


def test_appends_ride_the_next_round_trip(counted: Counted, key_prefix: str) -> None:
    client = counted.client
    log = AuditLog(client, prefix=key_prefix)
    with riding():  # a server's first joined append finds its script missing: loaded then
        _record(log, "warm", 0)
    _record(log, "r1", 0)  # outside a riding block: appended at once
    with riding():
        before = counted.sends
        for step in range(1, 6):
            assert _record(log, "r1", step) is None
        assert counted.sends == before, "a riding append takes no round trip of its own"
        assert shared_wire(client).call(["PING"]) in (b"PONG", "PONG", True)
        assert counted.sends == before + 1, "the next round trip carried all five"
        assert _steps(log, "r1") == [0, 1, 2, 3, 4, 5]
        _record(log, "r1", 6)
        _record(log, "r1", 7)
        before = counted.sends
    assert counted.sends == before + 1, "leaving the block sends what still waits"
    assert _steps(log, "r1") == list(range(8))
    assert log.verify("r1").ok


def test_a_rider_that_does_not_land_is_appended_in_its_place(
    client: redis.Redis, key_prefix: str
) -> None:
    log = AuditLog(client, prefix=key_prefix)
    _record(log, "r2", 0, once="check-0")
    other = AuditLog(client, prefix=key_prefix)  # another process: its own head cache
    with riding():
        _record(log, "r2", 1, once="check-0")  # a replayed step: already recorded
        _record(log, "r2", 2)  # chained on the event that did not land
        _record(other, "r2", 3)  # moves the head under the riders' feet (sent first)
        _record(log, "r2", 4)
    assert sorted(_steps(log, "r2")) == [0, 2, 3, 4]
    assert _steps(log, "r2").index(2) < _steps(log, "r2").index(4)
    assert log.verify("r2").ok


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()
