"""The simulated world's scripts do their work in few server calls (issue 17, the Redis server's
side of a start): ``world_apply_once`` registers the keys it writes in one ``HSET`` (not one per
write) before any write, refusing a spec with a command it does not allow before writing anything;
``world_read_all`` reads each registered key with one ``HGETALL`` (no ``TYPE`` first), leaving
out keys of other types and reading an empty key as an empty hash, as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from carebound.state.keys import run_key
from carebound.state.lua import script
from carebound.state.pipeline import call_script
from carebound.tools.connectors.simulated._redis_state import WriteBatch, apply_writes
from tests.servers import own_server

RUN = "run-world-scripts"


@pytest.fixture(scope="module")
def private_url() -> Iterator[str]:
    """A server of this module's own: its command counts are these tests' alone."""
    with own_server() as server:
        yield server.url


@pytest.fixture
def client(private_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(private_url)
    yield c
    c.close()


def _key(prefix: str, *parts: str) -> str:
    return run_key(prefix, RUN, "world", *parts)


def _calls(client: redis.Redis, *names: str) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names}


def _read_all(client: redis.Redis, prefix: str) -> dict[str, dict[bytes, bytes]]:
    flat = call_script(
        client, script("world_read_all"), [_key(prefix, "meta")], [run_key(prefix, RUN, "")]
    )
    return {
        suffix.decode(): dict(zip(fields[::2], fields[1::2], strict=True))
        for suffix, fields in zip(flat[::2], flat[1::2], strict=True)
    }


def test_writes_are_registered_in_one_call(client: redis.Redis, key_prefix: str) -> None:
    batch = WriteBatch()
    for n in range(5):
        batch.op("HSET", _key(key_prefix, "ehr", f"chart{n}"), "id", str(n))
    batch.op("HSET", _key(key_prefix, "ehr", "chart0"), "seen", "1")  # a key written twice
    apply_writes(client, batch)  # loads the script
    batch = WriteBatch()
    for n in range(5):
        batch.op("HSET", _key(key_prefix, "payer", f"plan{n}"), "id", str(n))
    before = _calls(client, "hset")
    apply_writes(client, batch)
    assert _calls(client, "hset")["hset"] - before["hset"] == 6, "five writes, one registry"
    registry = {f.decode() for f in client.hkeys(_key(key_prefix, "meta"))}
    assert {f"world:ehr:chart{n}" for n in range(5)} <= registry
    assert {f"world:payer:plan{n}" for n in range(5)} <= registry


def test_a_command_not_allowed_refuses_the_spec_before_any_write(
    client: redis.Redis, key_prefix: str
) -> None:
    batch = WriteBatch()
    batch.op("HSET", _key(key_prefix, "ehr", "chart"), "id", "1")
    batch.op("DEL", _key(key_prefix, "ehr", "chart"))
    with pytest.raises(ResponseError, match="command not allowed: DEL"):
        apply_writes(client, batch)
    assert list(client.scan_iter(match=f"{key_prefix}:*")) == []


def test_reading_the_world_whole_takes_one_read_a_key(client: redis.Redis, key_prefix: str) -> None:
    batch = WriteBatch()
    batch.op("HSET", _key(key_prefix, "ehr", "chart"), "id", "1", "name", "x")
    batch.op("RPUSH", _key(key_prefix, "outreach", "order"), "k1")  # a list: left out
    batch.op("HDEL", _key(key_prefix, "payer", "plan"), "id")  # registered, holds nothing
    apply_writes(client, batch)
    _read_all(client, key_prefix)  # loads the script
    before = _calls(client, "type", "hgetall")
    world = _read_all(client, key_prefix)
    ran = {name: count - before[name] for name, count in _calls(client, "type", "hgetall").items()}
    assert ran == {"type": 0, "hgetall": 3}, ran  # the chart, the list (refused), the plan
    assert world["world:ehr:chart"] == {b"id": b"1", b"name": b"x"}
    assert world["world:payer:plan"] == {}
    assert "world:outreach:order" not in world
