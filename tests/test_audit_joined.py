"""The audit appends that ride one round trip are one script call (issue 17, the Redis server's
side of a start): consecutive riding appends of a run join into one ``audit_record_many`` call
instead of an ``EVALSHA`` each, with the chain, its order, once keys and the lost-script path
as before (tests/test_audit_riding.py covers riding itself)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import redis
from redis.connection import Connection

from carebound import Runner, VirtualClock
from carebound._wire import riding, shared_wire
from carebound.audit import Actor, AuditLog
from carebound.state.lua import script, script_names
from tests.intake_scenario import intake_case_and_world
from tests.servers import own_server
from tests.test_audit_riding import _record, _steps

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind="agent", id="referral_intake", role=None)
START_AUDIT_CALLS = 8
"""Audit script calls of a warm referral_intake start until it waits (20 before: one per
event; 8 since the events riding one round trip are one call)."""


class ScriptCountingConnection(Connection):
    """A real connection that keeps the sha1 of every ``EVALSHA`` it sends (class-wide; each
    test builds its own subclass)."""

    shas: ClassVar[list[bytes]] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes) else list(command)
        for chunk in chunks:
            if isinstance(chunk, bytes | bytearray | memoryview):
                parts = bytes(chunk).split(b"$7\r\nEVALSHA\r\n$40\r\n")
                type(self).shas.extend(part[:40] for part in parts[1:])
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class Counted:
    """A client whose ``EVALSHA`` calls are recorded, by script name."""

    def __init__(self, url: str) -> None:
        self.connection_class: type[ScriptCountingConnection] = type(
            "TestScriptCounting", (ScriptCountingConnection,), {"shas": []}
        )
        pool = redis.ConnectionPool.from_url(url, connection_class=self.connection_class)
        self.client = redis.Redis(connection_pool=pool)
        self._names = {script(name).sha.encode(): name for name in script_names()}

    def calls(self) -> list[str]:
        """The scripts called so far, in order, by name."""
        return [self._names.get(sha, "?") for sha in self.connection_class.shas]

    def audit_calls(self, since: int = 0) -> int:
        """Calls of the audit append scripts (one event or several) after the first ``since``."""
        return sum(1 for name in self.calls()[since:] if name.startswith("audit_record"))


@pytest.fixture
def counted(redis_url: str, key_prefix: str) -> Iterator[Counted]:
    c = Counted(redis_url)
    yield c
    keys = list(c.client.scan_iter(match=f"{key_prefix}:*", count=1000))
    if keys:
        c.client.delete(*keys)
    c.client.close()


def _ping(client: redis.Redis) -> None:
    assert shared_wire(client).call(["PING"]) in (b"PONG", "PONG", True)


def _warm(log: AuditLog, client: redis.Redis, run_id: str) -> None:
    """Record step 0 of ``run_id`` riding, so the server has the joined script from then on."""
    with riding():
        _record(log, run_id, 0)
        _ping(client)


def test_the_appends_riding_one_round_trip_are_one_script_call(
    counted: Counted, key_prefix: str
) -> None:
    log = AuditLog(counted.client, prefix=key_prefix)
    _warm(log, counted.client, "r1")
    with riding():
        since = len(counted.calls())
        for step in range(1, 6):
            _record(log, "r1", step)
        _ping(counted.client)
        assert counted.audit_calls(since) == 1, counted.calls()[since:]
    assert _steps(log, "r1") == list(range(6))
    assert log.verify("r1").ok


def test_only_consecutive_appends_of_one_run_join(counted: Counted, key_prefix: str) -> None:
    log = AuditLog(counted.client, prefix=key_prefix)
    _warm(log, counted.client, "warm")
    with riding():
        since = len(counted.calls())
        _record(log, "a", 1)
        _record(log, "a", 2)
        _record(log, "b", 3)  # another run: its own call
        _record(log, "a", 4)  # after b's: joining a's first call would send it before b's
        _ping(counted.client)
        assert counted.audit_calls(since) == 3, counted.calls()[since:]
    assert _steps(log, "a") == [1, 2, 4]
    assert _steps(log, "b") == [3]
    assert log.verify("a").ok and log.verify("b").ok


def test_joined_appends_keep_once_keys_and_recover_a_moved_head(
    counted: Counted, key_prefix: str
) -> None:
    log = AuditLog(counted.client, prefix=key_prefix)
    _record(log, "r2", 0, once="check-0")
    other = AuditLog(counted.client, prefix=key_prefix)  # another process: its own head cache
    with riding():
        _record(log, "r2", 1, once="check-0")  # a replayed step: already recorded
        _record(log, "r2", 2)  # chained on the event that did not land
        _record(other, "r2", 3)  # another writer: chained on the head it knows (stale)
        _record(log, "r2", 4)
    assert sorted(_steps(log, "r2")) == [0, 2, 3, 4]
    assert _steps(log, "r2").index(2) < _steps(log, "r2").index(4)
    assert log.verify("r2").ok


def test_a_lost_script_appends_every_part_and_is_loaded_again(key_prefix: str) -> None:
    # on a server of its own: the suite's server keeps the scripts the tests after it expect
    with own_server() as server:
        counted = Counted(server.url)
        try:
            _lost_script(counted, key_prefix)
        finally:
            counted.client.close()


def _lost_script(counted: Counted, key_prefix: str) -> None:
    client = counted.client
    log = AuditLog(client, prefix=key_prefix)
    _record(log, "r3", 0)
    client.script_flush()
    with riding():
        for step in (1, 2, 3):
            _record(log, "r3", step)
        _ping(client)  # NOSCRIPT: each event appended in its place, the script loaded again
        assert _steps(log, "r3") == [0, 1, 2, 3]
        since = len(counted.calls())
        _record(log, "r3", 4)
        _record(log, "r3", 5)
        _ping(client)
        assert counted.calls()[since:] == ["audit_record_many"]
    assert _steps(log, "r3") == list(range(6))
    assert log.verify("r3").ok


def test_a_referral_intake_start_sends_few_audit_script_calls(
    counted: Counted, key_prefix: str
) -> None:
    case, world = intake_case_and_world()
    runner = Runner(counted.client, prefix=key_prefix, clock=VirtualClock(), lease_ttl_ms=600_000)
    runner.start("referral_intake", case, requester="sam", world=world)  # warms caches
    since = len(counted.calls())
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting", view.status
    calls = counted.audit_calls(since)
    assert calls <= START_AUDIT_CALLS, f"{calls} audit script calls: {counted.calls()[since:]}"
    assert runner.verify(view.run_id).ok


def _command_calls(client: redis.Redis, *names: str) -> dict[str, int]:
    """How many times the server ran each command so far (scripts' calls included)."""
    stats = client.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names}


def test_a_joined_call_reads_and_writes_the_head_and_anchor_once(key_prefix: str) -> None:
    with own_server() as server:  # its command counts are this test's alone
        client = redis.Redis.from_url(server.url)
        try:
            _reads_and_writes_once(client, key_prefix)
        finally:
            client.close()


def _reads_and_writes_once(client: redis.Redis, key_prefix: str) -> None:
    log = AuditLog(client, prefix=key_prefix)
    _warm(log, client, "r4")
    with riding():
        for step in range(1, 6):
            _record(log, "r4", step, once=f"step-{step}")
        before = _command_calls(client, "hmget", "hset", "xadd")
        _ping(client)
        after = _command_calls(client, "hmget", "hset", "xadd")
    ran = {name: after[name] - before[name] for name in after}
    # five events: their entries and index pointers, one head read, one head and one anchor write
    assert ran == {"hmget": 1, "hset": 2, "xadd": 10}, ran
    assert _steps(log, "r4") == list(range(6))
    assert log.verify("r4").ok
    with riding():  # the once keys were recorded with the head
        assert _record(log, "r4", 1, once="step-1") is None
    assert _steps(log, "r4") == list(range(6))
