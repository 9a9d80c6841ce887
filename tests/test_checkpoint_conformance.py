"""The official langgraph-checkpoint-conformance suite, run against both savers on both servers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer

from carebound.checkpoint import AsyncRedisSaver, RedisSaver


def _registered(kind: str, url: str, key_prefix: str) -> RegisteredCheckpointer:
    """A conformance factory; every saver it makes gets a fresh key prefix."""
    counter = itertools.count()

    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        prefix = f"{key_prefix}:s{next(counter)}"
        if kind == "async":
            aclient = aioredis.Redis.from_url(url)
            asaver = AsyncRedisSaver(aclient, prefix=prefix)
            try:
                yield asaver
            finally:
                await asaver.aclose()
                await aclient.aclose()
        else:
            client = redis.Redis.from_url(url)
            saver = RedisSaver(client, prefix=prefix)
            try:
                yield saver
            finally:
                saver.close()
                client.close()

    name = "AsyncRedisSaver" if kind == "async" else "RedisSaver"
    return checkpointer_test(name=f"carebound {name}")(factory)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_full_conformance(server_url: str, key_prefix: str, kind: str) -> None:
    report = await validate(_registered(kind, server_url, key_prefix))
    report.print_report()

    for cap in BASE_CAPABILITIES:
        result = report.results[cap.value]
        assert result.detected, f"{cap.value} not detected"
        assert result.passed is True and result.tests_failed == 0, (cap.value, result.failures)
        assert result.tests_passed > 0
    assert report.passed_all_base()
    # delete_for_runs, copy_thread and prune are implemented too: they must pass as well.
    for cap in EXTENDED_CAPABILITIES:
        result = report.results[cap.value]
        assert result.detected and result.passed is True, (cap.value, result.failures)
    assert report.conformance_level() == "FULL"
