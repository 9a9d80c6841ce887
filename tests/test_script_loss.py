"""A server that lost carebound's Lua scripts (restarted, ``SCRIPT FLUSH``, or a new version's
changed script it never saw) must not change what a drive stores or in which order.

A checkpoint write rides ahead of the round trip that settles a run (which keeps only the
newest checkpoint, packed, and releases the lease). When the server lacked the rider's script,
nothing of it ran, and the write was sent again after the settle: it unpacked the run's
checkpoint and wrote it after the lease was released. Each test uses a server of its own (the
suite's server keeps the scripts the tests after it expect).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from carebound import Runner
from carebound.state.lua import script, script_names
from carebound.tools.connectors import WorldSpec
from tests.servers import own_server

CASE = Path(__file__).resolve().parents[1] / "scenarios" / "cases" / "hello_referral.json"
PREFIX = "loss"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with own_server() as server:
        client = redis.Redis.from_url(server.url)
        try:
            yield client
        finally:
            client.close()


def _start(runner: Runner) -> str:
    case = json.loads(CASE.read_text())
    view = runner.start("demo", case, requester="sam", world=WorldSpec.from_bundles(case, None))
    assert view.status == "paused", view.status
    return view.run_id


def _checkpoint_keys(client: redis.Redis, run_id: str) -> list[str]:
    return sorted(
        k.decode().split(":", 2)[2] for k in client.scan_iter(match=f"{PREFIX}:{{{run_id}}}:cp*")
    )


def test_a_run_started_after_the_server_lost_every_script_parks_packed(
    client: redis.Redis,
) -> None:
    runner = Runner(client, prefix=PREFIX)
    assert _checkpoint_keys(client, _start(runner)) == ["cp:pk"]  # this process used them all
    client.script_flush()
    assert _checkpoint_keys(client, _start(runner)) == ["cp:pk"]


def test_a_process_whose_server_lacks_only_the_checkpoint_scripts_parks_packed(
    client: redis.Redis,
) -> None:
    """The server has every script but the checkpoint writes' (a new carebound version changed
    them), and this process has not sent them yet: the settle's own scripts run, the riders'
    must run before them."""
    for name in script_names():
        if name not in ("checkpoint_put", "checkpoint_put_writes"):
            client.script_load(script(name).source)
    runner = Runner(client, prefix=PREFIX)
    assert _checkpoint_keys(client, _start(runner)) == ["cp:pk"]
