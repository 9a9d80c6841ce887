"""A start that drives its new run here reads the world it seeds in the round trip that stores
the run (``segment_reads.prefetching``): the drive's first segment takes that world whole from
the prefetch instead of a round trip of its own. The prefetch must be exactly what the segment
would have read, serve one segment once, and be dropped by any world write before it is used.
"""

from __future__ import annotations

import redis

from carebound._wire import riding
from carebound.state.pipeline import call_script
from carebound.state.segment_reads import (
    Hash,
    forget_reads,
    prefetched,
    prefetching,
    remembered_hash,
    segment_reads,
)
from carebound.tools.connectors.simulated import World
from carebound.tools.connectors.simulated._redis_state import _READ_ALL, _whole
from tests.intake_scenario import intake_case_and_world

REGISTRY = "p:{r1}:world:meta"
KEY = "p:{r1}:world:ehr:res:Patient"


class _Reads:
    """A world's ``take_all``, counted."""

    def __init__(self, whole: dict[str, Hash]) -> None:
        self.whole = whole
        self.calls = 0

    def take_all(self) -> dict[str, Hash]:
        self.calls += 1
        return self.whole


def _read(reads: _Reads, key: str = KEY) -> Hash:
    def fetch() -> Hash:
        raise AssertionError("a key the registry named was fetched alone")

    return remembered_hash(key, registry=REGISTRY, take_all=reads.take_all, fetch=fetch)


def test_a_prefetched_world_serves_the_first_segment_once() -> None:
    redis_side = _Reads({KEY: {"p1": "fresh"}})
    with prefetching():
        prefetched(REGISTRY, {KEY: {"p1": "prefetched"}})
        with segment_reads():
            assert _read(redis_side) == {"p1": "prefetched"}
            assert _read(redis_side) == {"p1": "prefetched"}
        assert redis_side.calls == 0
        with segment_reads():  # the next segment reads Redis again
            assert _read(redis_side) == {"p1": "fresh"}
        assert redis_side.calls == 1


def test_a_world_write_before_the_first_read_drops_the_prefetch() -> None:
    redis_side = _Reads({KEY: {"p1": "written"}})
    with prefetching():
        prefetched(REGISTRY, {KEY: {"p1": "before the write"}})
        with segment_reads():
            forget_reads([KEY])  # this process writes the world first
            assert _read(redis_side) == {"p1": "written"}
    assert redis_side.calls == 1


def test_only_the_next_segment_may_use_a_prefetch() -> None:
    redis_side = _Reads({KEY: {"p1": "fresh"}})
    with prefetching():
        prefetched(REGISTRY, {KEY: {"p1": "prefetched"}})
        with segment_reads():
            pass  # a segment that does not read the world
        with segment_reads():
            assert _read(redis_side) == {"p1": "fresh"}
    assert redis_side.calls == 1


def test_nothing_is_prefetched_outside_a_prefetching_block() -> None:
    redis_side = _Reads({KEY: {"p1": "fresh"}})
    prefetched(REGISTRY, {KEY: {"p1": "kept by no one"}})
    with segment_reads():
        assert _read(redis_side) == {"p1": "fresh"}
    assert redis_side.calls == 1


def test_the_world_a_seeding_prefetches_is_the_world_as_read_whole(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    _, spec = intake_case_and_world()
    with prefetching():
        with riding():  # the seeding and the read ride the block's last round trip
            World.seed(redis_client, "rpre1", spec, prefix=key_prefix, ride=True)
        registry = f"{key_prefix}:{{rpre1}}:world:meta"
        base = registry[: -len("world:meta")]
        whole = _whole(call_script(redis_client, _READ_ALL, [registry], [base]), base)
        assert len(whole) > 5  # the EHR's and the payer's resources, the registry itself

        def no_round_trip() -> dict[str, Hash]:
            raise AssertionError("the segment read the world again")

        def no_fetch() -> Hash:
            raise AssertionError("a key was fetched alone")

        with segment_reads():
            for key, fields in whole.items():
                got = remembered_hash(
                    key, registry=registry, take_all=no_round_trip, fetch=no_fetch
                )
                assert got == fields, key
