"""A new run's simulated world rides the round trip that stores the run (issue 17, a start's round
trips): ``Runner.start`` without a run id seeds the world ahead of the drive mark, the ``create``
event and the record, in one round trip, in that order (a server applies a prefix of it: a crash
leaves no run, or a marked one with its world); a start given a run id seeds first, as before,
so a refused seed leaves no run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import redis
from redis.connection import Connection

from carebound import Runner, VirtualClock
from carebound._wire import riding, shared_wire
from carebound.state.lua import script
from carebound.tools.connectors import ConnectorError, WorldSpec
from carebound.tools.connectors.simulated import World
from tests.intake_scenario import intake_case_and_world
from tests.servers import own_server

RUN = "run-seed-rides"


class RecordingConnection(Connection):
    """A real connection that keeps every send (class-wide; each test builds its own subclass)."""

    sent: ClassVar[list[bytes]] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes) else list(command)
        type(self).sent.append(b"".join(bytes(chunk) for chunk in chunks))
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def recorded(redis_url: str, key_prefix: str) -> Iterator[tuple[redis.Redis, list[bytes]]]:
    connection_class = type("TestRecording", (RecordingConnection,), {"sent": []})
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=connection_class)
    client = redis.Redis(connection_pool=pool)
    yield client, connection_class.sent
    keys = list(client.scan_iter(match=f"{key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _spec(birth_date: str = "1961-04-12") -> WorldSpec:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": birth_date}
    return WorldSpec(ehr=[patient])


def _ping(client: redis.Redis) -> None:
    assert shared_wire(client).call(["PING"]) in (b"PONG", "PONG", True)


def test_a_riding_seed_takes_no_round_trip_of_its_own(
    recorded: tuple[redis.Redis, list[bytes]], key_prefix: str
) -> None:
    client, sent = recorded
    World.seed(client, "warm", _spec(), prefix=key_prefix)  # the server has the script
    with riding():
        before = len(sent)
        world = World.seed(client, RUN, _spec(), prefix=key_prefix, ride=True)
        assert len(sent) == before, "the seed waits for the next round trip"
        _ping(client)
        assert len(sent) == before + 1
    assert world.ehr.read("Patient", "p1")["birthDate"] == "1961-04-12"


def test_a_refused_riding_seed_raises_from_the_round_trip_it_rode(
    recorded: tuple[redis.Redis, list[bytes]], key_prefix: str
) -> None:
    client, _ = recorded
    World.seed(client, RUN, _spec(), prefix=key_prefix)
    with riding():
        World.seed(client, RUN, _spec(), prefix=key_prefix, ride=True)  # equal: nothing to say
        _ping(client)
        World.seed(client, RUN, _spec("1970-01-01"), prefix=key_prefix, ride=True)
        with pytest.raises(ConnectorError, match="different spec"):
            _ping(client)


def test_a_riding_seed_the_server_lost_the_script_of_is_seeded_then(key_prefix: str) -> None:
    # on a server of its own: the suite's server keeps the scripts the tests after it expect
    with own_server() as server:
        client = redis.Redis.from_url(server.url)
        try:
            World.seed(client, "warm", _spec(), prefix=key_prefix)  # the script was loaded once
            client.script_flush()
            with riding():
                world = World.seed(client, RUN, _spec(), prefix=key_prefix, ride=True)
                _ping(client)
            assert world.ehr.read("Patient", "p1")["birthDate"] == "1961-04-12"
        finally:
            client.close()


def test_a_start_sends_the_world_ahead_of_the_mark_in_the_run_s_round_trip(
    recorded: tuple[redis.Redis, list[bytes]], key_prefix: str
) -> None:
    client, sent = recorded
    case, world = intake_case_and_world()
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock(), lease_ttl_ms=600_000)
    runner.start("referral_intake", case, requester="sam", world=world)  # warms caches
    before = len(sent)
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting", view.status
    seed = script("world_apply_once").sha.encode()
    first = sent[before]
    assert seed in first, "the world rides the start's first round trip"
    drive_mark = first.index(b"ZADD")
    record = first.index(b"HSET", drive_mark)
    assert first.index(seed) < drive_mark < record, "the world, the mark, then the record"
    assert runner.verify(view.run_id).ok


def test_a_start_given_a_run_id_is_refused_before_any_key_of_its_run(
    recorded: tuple[redis.Redis, list[bytes]], key_prefix: str
) -> None:
    client, _ = recorded
    case, world = intake_case_and_world()
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock(), lease_ttl_ms=600_000)
    World.seed(client, "given-id", _spec(), prefix=key_prefix)  # another spec's world
    seeded = sorted(client.scan_iter(match=f"{key_prefix}:*"))
    with pytest.raises(ConnectorError, match="different spec"):
        runner.start("referral_intake", case, requester="sam", world=world, run_id="given-id")
    assert sorted(client.scan_iter(match=f"{key_prefix}:*")) == seeded, "no run was stored"
