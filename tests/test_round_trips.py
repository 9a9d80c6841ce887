"""Pinned Redis round trips: the refactor may lower these counts, never raise them.

Round trips are counted on the client side (each packed send on a connection of the Runner's
own pool), so other clients of the same server, and other tests running against it, do not
disturb the figures. A pipeline or a Lua script is one send, hence one round trip.

Pinned figures (main before the "house" redesign, issue 14):

- a warm reviewer decide that drives the run on to its next stop: 9 (7 once a drive's
  checkpoints rode its other round trips, 6 once an effect's record rode the next one)
- one checkpoint ``put`` of the Redis saver: 1
- ``Runner.start`` of the demo agent, warm, to its first hold: ``START_TO_FIRST_HOLD``
- ``Runner.start`` of ``referral_intake`` on its scenario's world, warm, until it waits for the
  office's reply: ``START_REFERRAL_INTAKE`` (issue 17: 99, then 73 once its world's reads were
  remembered for a graph segment, then 59 once the agent's audit appends rode the segment's
  next round trip; the demo's start went from 22 to 17 with the latter; then 36, and the demo's
  8, once a drive sent only the checkpoints an effect, a hold or the segment's end needs, riding
  the round trips of the reserve, the park and the settle: carebound.checkpoint._session);
  then 21 once a segment read its world whole on its first read and an effect computed on the
  segment's reads (carebound.state.segment_reads); then 17 once an effect's record (the
  ledger's result and its audit event) rode the next round trip (tests/test_effect_record_rides.py);
  then 15, and the demo's 6, once a start's drive mark and create event rode the round trip that
  stores the run (carebound.state.trips.Trips.starting); then 14, and the demo's 5, once a new
  run's world seeding rode that round trip too, ahead of the mark (``RunContext.fresh``); then
  13 once a hash the world's registry does not name read as empty without a round trip
  (carebound.state.segment_reads.remembered_hash); then 12, and the demo's 4, once a start
  took its run's lease in the round trip that stores the run (``RunStore.create(then=...)``),
  its pinned pack and case remembered from what it stored instead of read back; then 11 once
  the world a start seeds was read in that round trip too, for the drive's first segment
  (``segment_reads.prefetching``)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from redis.connection import Connection

from carebound import Approve, Edit, Runner, VirtualClock
from carebound.checkpoint import RedisSaver
from tests.intake_scenario import intake_case_and_world

DECIDE_TO_NEXT_STOP = 6
CHECKPOINT_PUT = 1
START_TO_FIRST_HOLD = 4
START_REFERRAL_INTAKE = 11


class CountingConnection(Connection):
    """A real connection that counts its sends to the server (one per round trip).

    The counter lives on the class; each test builds its own subclass (see ``counted``), so
    two tests never share a counter.
    """

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class Counted:
    """A Redis client whose round trips are counted, and a way to measure a block of calls."""

    def __init__(self, url: str) -> None:
        self.connection_class: type[CountingConnection] = type(
            "TestCountingConnection", (CountingConnection,), {"sends": 0}
        )
        pool = redis.ConnectionPool.from_url(url, connection_class=self.connection_class)
        self.client = redis.Redis(connection_pool=pool)

    @property
    def sends(self) -> int:
        """Round trips so far on this client."""
        return self.connection_class.sends


@pytest.fixture
def counted(redis_url: str, key_prefix: str) -> Iterator[Counted]:
    """A counted client of the test server; this test's keys are removed afterwards."""
    c = Counted(redis_url)
    yield c
    keys = list(c.client.scan_iter(match=f"{key_prefix}:*", count=1000))
    if keys:
        c.client.delete(*keys)
    c.client.close()


def _runner(counted: Counted, key_prefix: str) -> Runner:
    """A Runner on the counted client. Its lease lasts ten minutes, so no heartbeat renewal
    (every third of the lease) can land in a count on a slow machine."""
    return Runner(counted.client, prefix=key_prefix, clock=VirtualClock(), lease_ttl_ms=600_000)


def _start_to_hold(runner: Runner, case: Any, world: Any) -> Any:
    view = runner.start("demo", case, requester="sam", world=world)
    assert view.status == "paused", view.status
    assert view.pending is not None
    return view.pending.request


def test_start_to_the_first_hold(
    counted: Counted, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner = _runner(counted, key_prefix)
    _start_to_hold(runner, demo_case, demo_world)  # warms connections, scripts and caches
    before = counted.sends
    _start_to_hold(runner, demo_case, demo_world)
    trips = counted.sends - before
    assert trips <= START_TO_FIRST_HOLD, f"start took {trips} round trips"


def test_a_referral_intake_start_until_it_waits(counted: Counted, key_prefix: str) -> None:
    case, world = intake_case_and_world()
    runner = _runner(counted, key_prefix)

    def start_trips() -> int:
        before = counted.sends
        view = runner.start("referral_intake", case, requester="sam", world=world)
        assert view.status == "waiting", view.status
        return counted.sends - before

    start_trips()  # warms connections, scripts and caches
    trips = start_trips()
    assert trips <= START_REFERRAL_INTAKE, f"start took {trips} round trips"


@pytest.mark.parametrize("kind", ["approve", "edit"])
def test_a_warm_decide_to_the_next_stop(
    counted: Counted, key_prefix: str, demo_case: Any, demo_world: Any, kind: str
) -> None:
    runner = _runner(counted, key_prefix)

    def decide_trips() -> int:
        request = _start_to_hold(runner, demo_case, demo_world)
        decision: Approve | Edit
        if kind == "edit":
            args = {**request.args, "note": "Call first."}
            decision = Edit(reviewer="Casey ", role="intake_coordinator",
                            args_hash=request.args_hash, args=args)  # fmt: skip
        else:
            decision = Approve(
                reviewer="casey", role="intake_coordinator", args_hash=request.args_hash
            )
        before = counted.sends
        assert runner.decide(request.approval_id, decision).outcome == "decided"
        return counted.sends - before

    decide_trips()  # warms caches and scripts
    trips = decide_trips()
    assert trips <= DECIDE_TO_NEXT_STOP, f"decide took {trips} round trips"


def test_one_checkpoint_put(counted: Counted, key_prefix: str) -> None:
    saver = RedisSaver(counted.client, prefix=key_prefix)
    values = {"a": [1, 2, 3], "b": "x" * 500, "c": {"k": "v"}}

    def checkpoint() -> Checkpoint:
        cp = empty_checkpoint()
        cp["channel_values"] = dict(values)
        cp["channel_versions"] = dict.fromkeys(values, "1")
        return cp

    try:
        # warm up: connect and load the scripts into the server's cache
        saver.put(_config("t-warm"), checkpoint(), {}, checkpoint()["channel_versions"])
        parent = _config("t-pinned")
        trips = []
        for step in range(3):  # the first put of a thread also registers it
            cp = checkpoint()
            before = counted.sends
            parent = saver.put(parent, cp, {"step": step}, cp["channel_versions"])
            trips.append(counted.sends - before)
        assert max(trips) <= CHECKPOINT_PUT, f"puts took {trips} round trips"
    finally:
        saver.close()


def _config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
