"""A start takes its run's lease in the round trip that stores the run (``RunStore.create``'s
``then``), and remembers the run's pinned pack and case from what it stored instead of reading
them back: the remembered ones must be exactly what any other process reads, and a start that
leaves the drive to a worker (``drive="queue"``) must not take the lease.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis
from redis.connection import Connection

from carebound import Runner, VirtualClock
from carebound.checkpoint import _scripts
from carebound.state.keys import lease_key
from carebound.state.runs import RunStore
from tests.intake_scenario import intake_case_and_world


def _runner(client: redis.Redis, prefix: str, **kwargs: Any) -> Runner:
    return Runner(client, prefix=prefix, clock=VirtualClock(), **kwargs)


def test_the_pinned_case_and_pack_a_start_remembers_are_what_another_process_reads(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    case, world = intake_case_and_world()
    started = _runner(redis_client, key_prefix)
    view = started.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting", view.status
    other = _runner(redis_client, key_prefix)  # a cold process: reads both from Redis
    core, cold = started._core, other._core  # private: comparing the two caches
    assert not core.is_cold(view.run_id)
    assert cold.is_cold(view.run_id)
    assert core.case_for(view.run_id) == cold.case_for(view.run_id)
    assert core.case_for(view.run_id) == RunStore(redis_client, prefix=key_prefix).case(view.run_id)
    assert core.pack_for(view.run_id) == cold.pack_for(view.run_id)
    assert view.run_id in core.seeded_worlds


def test_a_start_driven_here_holds_no_lease_once_parked(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """The lease taken with the run's record is the drive's own: given back when it parks."""
    case, world = intake_case_and_world()
    view = _runner(redis_client, key_prefix).start(
        "referral_intake", case, requester="sam", world=world, run_id="rleasetrip1"
    )
    assert view.status == "waiting", view.status
    assert redis_client.exists(f"{key_prefix}:{{rleasetrip1}}:run")
    assert not redis_client.hget(lease_key(key_prefix, "rleasetrip1"), "owner")


def test_a_queued_start_leaves_the_lease_to_the_worker(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    case, world = intake_case_and_world()
    runner = _runner(redis_client, key_prefix, drive="queue")
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "running", view.status
    lease = lease_key(key_prefix, view.run_id)
    assert not redis_client.hget(lease, "owner"), "a queued start took the run's lease"


class _Recording(Connection):
    """A real connection that keeps what it sends (this test's own subclass)."""

    sent: ClassVar[list[bytes]] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        parts = command if isinstance(command, list) else [command]
        type(self).sent.append(b"".join(bytes(p) for p in parts))
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def test_a_new_run_is_not_read_for_checkpoints_it_cannot_have(
    redis_url: str, key_prefix: str
) -> None:
    """A run id the start made has no checkpoint yet: its lease trip does not read one (a start
    given its id still does: that id came from outside)."""
    recording = type("Recording", (_Recording,), {"sent": []})
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=recording)
    client = redis.Redis(connection_pool=pool)
    try:
        runner = _runner(client, key_prefix)
        case, world = intake_case_and_world()
        runner.start("referral_intake", case, requester="sam", world=world)  # warm
        recording.sent.clear()
        view = runner.start("referral_intake", case, requester="sam", world=world)
        assert view.status == "waiting", view.status
        load = _scripts.LOAD.sha.encode()
        assert not any(load in sent for sent in recording.sent)
        named = runner.start(
            "referral_intake", case, requester="sam", world=world, run_id="rnamed1"
        )
        assert named.status == "waiting", named.status
        assert any(load in sent for sent in recording.sent)
    finally:
        client.close()
