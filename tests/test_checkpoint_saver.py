"""carebound's Redis checkpointer on real Redis 7 and Valkey: graphs, TTL, delete, fencing, cost."""

from __future__ import annotations

import asyncio
import operator
import threading
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import ormsgpack
import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.connection import Connection

import carebound.checkpoint
from carebound._errors import CareboundError, LeaseLostError
from carebound.checkpoint import AsyncRedisSaver, RedisSaver
from carebound.checkpoint._scripts import PUT_WITH_WRITES
from carebound.state.keys import lease_key
from tests.servers import ServerProcess, redis_binary, redis_cluster, valkey_binary

# -- helpers ---------------------------------------------------------------------------


class State(TypedDict, total=False):
    case: str
    log: Annotated[list[str], operator.add]
    decision: str


def _builder() -> StateGraph[State]:
    def intake(state: State) -> dict[str, Any]:
        return {"log": [f"intake {state['case']}"]}

    def review(state: State) -> dict[str, Any]:
        answer = interrupt({"question": f"approve {state['case']}?"})
        return {"log": ["reviewed"], "decision": answer}

    def act(state: State) -> dict[str, Any]:
        return {"log": [f"act on {state['decision']}"]}

    builder = StateGraph(State)
    builder.add_node("intake", intake)
    builder.add_node("review", review)
    builder.add_node("act", act)
    builder.add_edge(START, "intake")
    builder.add_edge("intake", "review")
    builder.add_edge("review", "act")
    builder.add_edge("act", END)
    return builder


def _config(thread_id: str, **extra: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **extra}}


def _checkpoint(values: dict[str, Any] | None = None) -> Checkpoint:
    cp = empty_checkpoint()
    cp["channel_values"] = dict(values or {})
    cp["channel_versions"] = dict.fromkeys(cp["channel_values"], "1")
    return cp


def _thread_keys(client: redis.Redis, prefix: str, thread_id: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{prefix}:{{{thread_id}}}:*", count=1000))


@pytest.fixture
def client(server_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(server_url)
    yield c
    c.close()


@pytest.fixture
def saver(client: redis.Redis, key_prefix: str) -> Iterator[RedisSaver]:
    s = RedisSaver(client, prefix=key_prefix)
    yield s
    s.close()


class CountingConnection(Connection):
    """A real connection that counts how often it sends to the server (round trips)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def _evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# -- public surface --------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert carebound.checkpoint.__all__ == ["AsyncRedisSaver", "RedisSaver"]
    assert issubclass(LeaseLostError, CareboundError)


def test_rejects_bad_settings(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisSaver(client, ttl=0)
    with pytest.raises(ValueError, match="prefix"):
        RedisSaver(client, prefix="")


# -- graphs: interrupt, then resume from another saver instance ------------------------


def test_sync_graph_resumes_from_new_saver(server_url: str, key_prefix: str) -> None:
    thread = f"case-{uuid.uuid4().hex}"
    config = _config(thread)
    with RedisSaver.from_url(server_url, prefix=key_prefix) as first:
        paused = (
            _builder()
            .compile(checkpointer=first)
            .invoke({"case": "c-7", "log": []}, config, durability="sync")
        )
    assert paused["__interrupt__"][0].value == {"question": "approve c-7?"}

    # a new client and saver, as a different process would have
    with RedisSaver.from_url(server_url, prefix=key_prefix) as second:
        graph = _builder().compile(checkpointer=second)
        assert graph.get_state(config).next == ("review",)
        final = graph.invoke(Command(resume="approve"), config, durability="sync")
        assert final["log"] == ["intake c-7", "reviewed", "act on approve"]
        assert final["decision"] == "approve"
        history = list(graph.get_state_history(config))
        assert len(history) >= 5
        assert graph.get_state(config).next == ()


async def test_async_graph_resumes_from_new_saver(server_url: str, key_prefix: str) -> None:
    thread = f"case-{uuid.uuid4().hex}"
    config = _config(thread)
    async with AsyncRedisSaver.from_url(server_url, prefix=key_prefix) as first:
        paused = (
            await _builder()
            .compile(checkpointer=first)
            .ainvoke({"case": "c-8", "log": []}, config, durability="sync")
        )
    assert paused["__interrupt__"][0].value == {"question": "approve c-8?"}

    async with AsyncRedisSaver.from_url(server_url, prefix=key_prefix) as second:
        graph = _builder().compile(checkpointer=second)
        final = await graph.ainvoke(Command(resume="reject"), config, durability="sync")
        assert final["log"] == ["intake c-8", "reviewed", "act on reject"]
        snapshot = await graph.aget_state(config)
        assert snapshot.next == ()
        latest = [s async for s in graph.aget_state_history(config, limit=2)][-2]
        assert latest.values == final


async def test_sync_and_async_savers_share_one_key_space(server_url: str, key_prefix: str) -> None:
    thread = f"case-{uuid.uuid4().hex}"
    config = _config(thread)
    with RedisSaver.from_url(server_url, prefix=key_prefix) as sync_saver:
        graph = _builder().compile(checkpointer=sync_saver)
        await asyncio.to_thread(
            lambda: graph.invoke({"case": "c-9", "log": []}, config, durability="sync")
        )
    async with AsyncRedisSaver.from_url(server_url, prefix=key_prefix) as async_saver:
        final = (
            await _builder()
            .compile(checkpointer=async_saver)
            .ainvoke(Command(resume="approve"), config, durability="sync")
        )
    assert final["log"][-1] == "act on approve"


def test_async_saver_sync_methods_need_another_thread(server_url: str, key_prefix: str) -> None:
    async def scenario() -> None:
        async with AsyncRedisSaver.from_url(server_url, prefix=key_prefix) as saver:
            stored = await saver.aput(_config("t-x", checkpoint_ns=""), _checkpoint(), {}, {})
            with pytest.raises(asyncio.InvalidStateError, match="event loop thread"):
                saver.get_tuple(stored)
            # from a worker thread the sync API runs on the saver's loop
            found = await asyncio.to_thread(saver.get_tuple, stored)
            assert found is not None
            assert (
                found.config["configurable"]["checkpoint_id"]
                == stored["configurable"]["checkpoint_id"]
            )
            listed = await asyncio.to_thread(lambda: list(saver.list(_config("t-x"))))
            assert len(listed) == 1

    asyncio.run(scenario())


# -- semantics beyond the conformance suite --------------------------------------------


def test_pending_writes_match_in_memory_semantics(saver: RedisSaver) -> None:
    stored = saver.put(_config("t-w", checkpoint_ns=""), _checkpoint(), {"step": 1}, {})
    saver.put_writes(stored, [("a", 1), ("b", 2)], "task-2", "~path-b")
    saver.put_writes(stored, [("a", 10)], "task-1", "~path-a")
    # regular writes never overwrite an existing (task, idx) ...
    saver.put_writes(stored, [("a", 99), ("b", 99)], "task-2", "~path-b")
    # ... special writes (errors, interrupts) do
    saver.put_writes(stored, [(ERROR, "first")], "task-3")
    saver.put_writes(stored, [(ERROR, "second"), (INTERRUPT, {"q": 1})], "task-3")

    found = saver.get_tuple(stored)
    assert found is not None
    # writes_sort_key order: (task_path, task_id, idx)
    assert found.pending_writes == [
        ("task-3", INTERRUPT, {"q": 1}),
        ("task-3", ERROR, "second"),
        ("task-1", "a", 10),
        ("task-2", "a", 1),
        ("task-2", "b", 2),
    ]


def test_list_across_threads_with_filters(saver: RedisSaver) -> None:
    for thread in ("t-1", "t-2"):
        parent: RunnableConfig = _config(thread, checkpoint_ns="")
        for step in range(3):
            cp = _checkpoint({"n": step})
            cp["channel_versions"] = {"n": str(step + 1)}
            parent = saver.put(parent, cp, {"step": step}, cp["channel_versions"])
    saver.put(_config("t-1", checkpoint_ns="child:1"), _checkpoint(), {"step": 9}, {})

    everything = list(saver.list(None))
    assert len(everything) == 7
    assert {t.config["configurable"]["thread_id"] for t in everything} == {"t-1", "t-2"}
    assert [t.metadata["step"] for t in saver.list(None, filter={"step": 2})] == [2, 2]
    assert len(list(saver.list(None, limit=4))) == 4
    # one thread, every namespace
    assert len(list(saver.list({"configurable": {"thread_id": "t-1"}}))) == 4
    newest = next(saver.list(_config("t-2", checkpoint_ns="")))
    older = list(saver.list(_config("t-2", checkpoint_ns=""), before=newest.config))
    assert [t.metadata["step"] for t in older] == [1, 0]
    assert older[0].checkpoint["channel_values"] == {"n": 1}


def test_next_version_is_increasing_string(saver: RedisSaver) -> None:
    first = saver.get_next_version(None, None)
    second = saver.get_next_version(first, None)
    assert first < second
    assert second.split(".")[0] == f"{2:010}"
    assert len(second) == 19


def test_a_thread_with_long_versions_goes_on_in_order(saver: RedisSaver) -> None:
    """A channel last versioned in the long (32-digit) form gets a short version that still
    sorts after it, as LangGraph compares versions as strings."""
    long_form = f"{41:032}.{0.5:016}"
    after = saver.get_next_version(long_form, None)
    assert after.split(".")[0] == f"{42:010}"
    assert after > long_form
    assert saver.get_next_version(after, None) > after


def test_large_values_are_stored_deflated_and_read_back(
    client: redis.Redis, key_prefix: str
) -> None:
    """With ``compress=True`` (carebound's runs), a value of COMPRESS_AT bytes or more is
    stored zlib-deflated (a smaller blob in Redis) and reads back equal, also through a saver
    made without it; small values stay as they are."""
    saver = RedisSaver(client, prefix=key_prefix, compress=True)
    big = {"results": [{"tool": "list_documents_on_file", "status": "executed", "i": i}
                       for i in range(40)]}  # fmt: skip
    config = _config("t-z", checkpoint_ns="")
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"big": big, "small": 1}
    checkpoint["channel_versions"] = {"big": saver.get_next_version(None, None),
                                      "small": saver.get_next_version(None, None)}  # fmt: skip
    stored = saver.put(config, checkpoint, {}, checkpoint["channel_versions"])
    blobs = client.hgetall(f"{key_prefix}:{{t-z}}:cp:blob:")
    by_channel = {k.split(b"\x00")[0]: v for k, v in blobs.items()}
    assert by_channel[b"big"].startswith(b"zlib+msgpack\x00")
    assert len(by_channel[b"big"]) < len(ormsgpack.packb(big)) / 3
    assert by_channel[b"small"].startswith(b"msgpack\x00")
    loaded = saver.get_tuple(stored)
    assert loaded is not None
    assert loaded.checkpoint["channel_values"] == {"big": big, "small": 1}
    plain_reader = RedisSaver(client, prefix=key_prefix).get_tuple(stored)
    assert plain_reader is not None
    assert plain_reader.checkpoint["channel_values"] == {"big": big, "small": 1}


def test_a_saver_of_yours_stores_values_as_serialized_unless_asked_to_compress(
    saver: RedisSaver, client: redis.Redis, key_prefix: str
) -> None:
    """The default saver (a graph of yours) spends no CPU deflating: a large value is stored as
    serialized; carebound's runs make theirs with ``compress=True``."""
    big = {"rows": [{"status": "executed", "i": i} for i in range(40)]}
    config = _config("t-plain", checkpoint_ns="")
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"big": big}
    checkpoint["channel_versions"] = {"big": saver.get_next_version(None, None)}
    stored = saver.put(config, checkpoint, {}, checkpoint["channel_versions"])
    blobs = client.hgetall(f"{key_prefix}:{{t-plain}}:cp:blob:")
    [value] = blobs.values()
    assert value == b"msgpack\x00" + ormsgpack.packb(big)
    loaded = saver.get_tuple(stored)
    assert loaded is not None and loaded.checkpoint["channel_values"] == {"big": big}


def test_client_with_decoded_responses_is_handled(server_url: str, key_prefix: str) -> None:
    text_client = redis.Redis.from_url(server_url, decode_responses=True)
    saver = RedisSaver(text_client, prefix=key_prefix)
    try:
        stored = saver.put(
            _config("t-d", checkpoint_ns=""), _checkpoint({"b": b"\x00\xff"}), {}, {"b": "1"}
        )
        found = saver.get_tuple(stored)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"b": b"\x00\xff"}
    finally:
        saver.close()
        text_client.close()


def test_a_primed_latest_read_is_served_once(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    from carebound.state.pipeline import run

    first = saver.put(_config("t-p", checkpoint_ns=""), _checkpoint({"a": 1}), {}, {"a": "1"})
    queued: dict[str, bool] = {}  # filled again if the server first replies NOSCRIPT

    def fill(pipe: redis.client.Pipeline) -> None:
        queued["latest"] = saver.queue_latest(pipe, "t-p")

    (reply,) = run(client, fill)
    assert queued == {"latest": True}
    sends = _evalsha_calls(client)

    with saver.primed("t-p", reply):
        other = saver.get_tuple(_config("t-other"))  # not the primed thread: read as usual
        served = saver.get_tuple(_config("t-p"))
        assert _evalsha_calls(client) == sends + 1  # only t-other's read reached the server
        newer = _checkpoint({"a": 2})
        newer["channel_versions"] = {"a": "2"}
        saver.put(first, newer, {}, {"a": "2"})
        again = saver.get_tuple(_config("t-p"))  # served once: now read, and newer

    assert other is None
    assert served is not None and served.checkpoint["channel_values"] == {"a": 1}
    assert served == saver.get_tuple(first)
    assert again is not None and again.checkpoint["channel_values"] == {"a": 2}


def test_no_primed_read_through_a_decoding_client(server_url: str, saver: RedisSaver) -> None:
    from carebound.state.pipeline import run

    text_client = redis.Redis.from_url(server_url, decode_responses=True)
    try:
        queued: dict[str, bool] = {}

        def fill(pipe: redis.client.Pipeline) -> None:
            queued["latest"] = saver.queue_latest(pipe, "t")

        replies = run(text_client, fill)
    finally:
        text_client.close()
    assert queued == {"latest": False}
    assert replies == []


def test_buffered_writes_send_only_the_newest_checkpoint(server_url: str, key_prefix: str) -> None:
    counting = type("Counting", (CountingConnection,), {"sends": 0})
    client = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(server_url, connection_class=counting)
    )
    saver = RedisSaver(client, prefix=key_prefix)
    first = saver.put(_config("t-c", checkpoint_ns=""), _checkpoint({"a": 1}), {}, {"a": "1"})
    other = saver.put(_config("t-o", checkpoint_ns=""), _checkpoint({"a": 1}), {}, {"a": "1"})
    saver.put_writes(other, [("z", 0)], "warm-up")
    client.script_load(PUT_WITH_WRITES.source)  # the server has every script now
    before = counting.sends

    with saver.buffered_writes("t-c") as buffer:
        saver.put_writes(first, [("a", 2)], "task-1")
        saver.put_writes(other, [("a", 3)], "task-9")  # another thread: sent at once
        assert counting.sends == before + 1
        middle = _checkpoint({"a": 2, "b": "x"})
        middle["channel_versions"] = {"a": "2", "b": "1"}
        at_middle = saver.put(first, middle, {}, {"a": "2", "b": "1"})
        saver.put_writes(at_middle, [("c", 9)], "task-2")  # superseded below, with middle
        newer = _checkpoint({"a": 3, "b": "x"})
        newer["channel_versions"] = {"a": "3", "b": "1"}
        at_newer = saver.put(at_middle, newer, {}, {"a": "3"})
        saver.put_writes(at_newer, [("a", 5)], "task-3")
        assert counting.sends == before + 1  # nothing of t-c sent yet
        assert buffer.puts_held == 2
        latest = saver.get_tuple(_config("t-c"))  # a read sends what is held first
        assert counting.sends == before + 3  # put + writes in one round trip, then the read

    assert saver.get_tuple(at_middle) is None  # never sent: the newer one superseded it
    assert latest is not None and latest.config["configurable"]["checkpoint_id"] == newer["id"]
    assert latest.checkpoint["channel_values"] == {"a": 3, "b": "x"}  # b from the middle put
    assert latest.pending_writes == [("task-3", "a", 5)]
    with saver.buffered_writes("t-c"):
        saver.put_writes(at_newer, [("c", 6)], "task-4")
    # leaving the block sends what is left
    left = saver.get_tuple(_config("t-c"))
    assert left is not None and ("task-4", "c", 6) in left.pending_writes
    saver.close()
    client.close()


def test_buffered_writes_are_fenced_like_single_ones(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    client.hset(lease_key(key_prefix, "t-f"), mapping={"owner": "w2", "token": 7})
    config = _config("t-f", checkpoint_ns="", fencing_token=6)

    with pytest.raises(LeaseLostError), saver.buffered_writes("t-f"):
        saver.put_writes(_config("t-f", checkpoint_ns="", checkpoint_id="x", fencing_token=6),
                         [("a", 1)], "task-1")  # fmt: skip
        saver.put(config, _checkpoint({"a": 1}), {}, {"a": "1"})
        saver.flush_ahead()  # outside a riding block: sent now, and refused

    assert saver.get_tuple(_config("t-f")) is None  # refused before anything was written


def test_a_flush_ahead_rides_the_next_round_trip_and_is_fenced_first(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    from carebound._wire import riding
    from carebound.state.pipeline import run

    saver.put(_config("t-w", checkpoint_ns=""), _checkpoint(), {}, {})  # registers, loads
    lease = lease_key(key_prefix, "t-r")
    client.hset(lease, mapping={"owner": "w1", "token": 6})
    config = _config("t-r", checkpoint_ns="", fencing_token=6)
    with riding(), saver.buffered_writes("t-r"):
        saver.put(config, _checkpoint({"a": 1}), {}, {"a": "1"})
        saver.flush_ahead()
        assert client.exists(f"{key_prefix}:{{t-r}}:cp:ns") == 0
        replies = run(client, lambda pipe: pipe.hget(lease, "token"))  # the next trip carries it
        assert replies == [b"6"]
    assert saver.get_tuple(_config("t-r")) is not None

    client.hset(lease, mapping={"owner": "w2", "token": 7})  # another worker took the run
    with pytest.raises(LeaseLostError), riding(), saver.buffered_writes("t-r"):
        saver.put(config, _checkpoint({"a": 2}), {}, {"a": "2"})
        saver.flush_ahead()
        run(client, lambda pipe: pipe.incr(f"{key_prefix}:{{t-r}}:effect"))
    stored = saver.get_tuple(_config("t-r"))
    assert stored is not None and stored.checkpoint["channel_values"] == {"a": 1}


# -- retention --------------------------------------------------------------------------


def test_ttl_is_set_and_refreshed_on_every_key(client: redis.Redis, key_prefix: str) -> None:
    saver = RedisSaver(client, prefix=key_prefix, ttl=300)
    thread = "t-ttl"
    stored = saver.put(_config(thread, checkpoint_ns=""), _checkpoint({"a": 1}), {}, {"a": "1"})
    saver.put(_config(thread, checkpoint_ns="child:1"), _checkpoint(), {"run_id": "r1"}, {})
    saver.put_writes(stored, [("a", 2)], "task-1")

    keys = _thread_keys(client, key_prefix, thread)
    assert len(keys) >= 8
    for key in keys:
        assert 0 < client.ttl(key) <= 300, key

    for key in keys:
        client.expire(key, 5)
    saver.put_writes(stored, [("b", 3)], "task-2")
    for key in keys:
        assert client.ttl(key) > 250, key  # every key of the thread, not just those written


def test_registry_entries_of_expired_threads_are_dropped(
    client: redis.Redis, key_prefix: str
) -> None:
    saver = RedisSaver(client, prefix=key_prefix, ttl=60)
    saver.put(_config("t-live", checkpoint_ns=""), _checkpoint(), {}, {})
    registry = f"{key_prefix}:cp:threads"
    client.zadd(registry, {"t-expired-long-ago": 1.0})
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["t-live"]
    assert client.zrange(registry, 0, -1) == [b"t-live"]


@pytest.mark.parametrize("kind", ["redis", "valkey"])
def test_saver_survives_a_server_restart(kind: str) -> None:
    """A restart drops the connections and the script cache: the next call reconnects and
    reloads the script, and the data (AOF) is still there."""
    binary = redis_binary() if kind == "redis" else valkey_binary()
    if binary is None:
        pytest.skip(f"no {kind} server binary")
    server = ServerProcess(binary)
    server.start()
    client = redis.Redis.from_url(server.url)
    saver = RedisSaver(client, prefix="restart")
    try:
        stored = saver.put(_config("t-r", checkpoint_ns=""), _checkpoint({"a": 1}), {}, {"a": "1"})
        server.stop()
        server.start()
        saver.put_writes(stored, [("a", 2)], "task-1")  # plain EVALSHA on a dead connection
        server.stop()
        server.start()
        saver.put(_config("t-r2", checkpoint_ns=""), _checkpoint(), {}, {})  # pipelined path
        found = saver.get_tuple(stored)
        assert found is not None
        assert found.checkpoint["channel_values"] == {"a": 1}
        assert found.pending_writes == [("task-1", "a", 2)]
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"t-r", "t-r2"}
    finally:
        saver.close()
        client.close()
        server.cleanup()


# -- deletion ----------------------------------------------------------------------------


def test_delete_thread_leaves_no_keys(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    for thread in ("t-del", "t-keep"):
        for ns in ("", "child:1", "child:2"):
            stored = saver.put(
                _config(thread, checkpoint_ns=ns),
                _checkpoint({"v": ns}),
                {"run_id": "r"},
                {"v": "1"},
            )
            saver.put_writes(stored, [("v", 1)], "task-1")
    assert _thread_keys(client, key_prefix, "t-del")

    saver.delete_thread("t-del")

    assert _thread_keys(client, key_prefix, "t-del") == []
    assert list(saver.list(_config("t-del"))) == []
    registry = client.zrange(f"{key_prefix}:cp:threads", 0, -1)
    assert registry == [b"t-keep"]
    assert len(list(saver.list({"configurable": {"thread_id": "t-keep"}}))) == 3

    # a thread deleted behind the saver's back is registered again on its next write
    saver.put(_config("t-del", checkpoint_ns=""), _checkpoint(), {}, {})
    assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"t-del", "t-keep"}


# -- fencing -----------------------------------------------------------------------------


def test_fencing_token_refuses_stale_writers(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    thread = "t-fence"
    lease = lease_key(key_prefix, thread)
    client.hset(lease, mapping={"owner": "worker-a", "token": 7})
    current = _config(thread, checkpoint_ns="", fencing_token=7)
    stored = saver.put(current, _checkpoint({"a": 1}), {}, {"a": "1"})
    cid = stored["configurable"]["checkpoint_id"]
    saver.put_writes(
        _config(thread, checkpoint_ns="", checkpoint_id=cid, fencing_token=7), [("a", 2)], "task-1"
    )

    stale = _config(thread, checkpoint_ns="", fencing_token=6)
    with pytest.raises(LeaseLostError, match="t-fence") as caught:
        saver.put(stale, _checkpoint({"a": 3}), {}, {"a": "2"})
    assert caught.value.hint is not None and "another worker" in caught.value.hint
    stale_writes = _config(thread, checkpoint_ns="", checkpoint_id=cid, fencing_token=6)
    with pytest.raises(LeaseLostError):
        saver.put_writes(stale_writes, [("a", 4)], "task-2")

    # nothing of the refused writes was stored
    found = saver.get_tuple(_config(thread, checkpoint_ns=""))
    assert found is not None
    assert found.checkpoint["id"] == stored["configurable"]["checkpoint_id"]
    assert found.pending_writes == [("task-1", "a", 2)]

    # a missing lease refuses too; no fencing token means no check
    client.delete(lease)
    with pytest.raises(LeaseLostError, match="none"):
        saver.put(current, _checkpoint(), {}, {})
    saver.put(_config(thread, checkpoint_ns=""), _checkpoint(), {}, {})


def test_graph_run_with_a_lost_lease_stops(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    thread = f"case-{uuid.uuid4().hex}"
    client.hset(lease_key(key_prefix, thread), mapping={"owner": "worker-b", "token": 2})
    graph = _builder().compile(checkpointer=saver)
    with pytest.raises(LeaseLostError):
        graph.invoke(
            {"case": "c-1", "log": []}, _config(thread, fencing_token=1), durability="sync"
        )
    assert saver.get_tuple(_config(thread)) is None

    paused = graph.invoke(
        {"case": "c-1", "log": []}, _config(thread, fencing_token=2), durability="sync"
    )
    assert "__interrupt__" in paused


def test_lease_taken_over_mid_run_stops_the_old_writer(
    client: redis.Redis, saver: RedisSaver, key_prefix: str
) -> None:
    """Another worker takes the lease while a node runs: the node's writes and every later
    checkpoint of the old worker are refused, though it never checked the lease itself."""
    thread = f"case-{uuid.uuid4().hex}"
    lease = lease_key(key_prefix, thread)
    client.hset(lease, mapping={"owner": "worker-a", "token": 1})

    def intake(state: State) -> dict[str, Any]:
        client.hset(lease, mapping={"owner": "worker-b", "token": 2})  # the takeover
        return {"log": ["intake by worker-a"]}

    builder = StateGraph(State)
    builder.add_node("intake", intake)
    builder.add_node("act", lambda state: {"log": ["act"]})
    builder.add_edge(START, "intake")
    builder.add_edge("intake", "act")
    builder.add_edge("act", END)
    graph = builder.compile(checkpointer=saver)
    config = _config(thread, fencing_token=1)
    with pytest.raises(LeaseLostError):
        graph.invoke({"case": "c-2", "log": []}, config, durability="sync")

    history = list(saver.list(_config(thread)))
    assert [t.metadata["step"] for t in history] == [0, -1]  # nothing after the takeover
    assert history[0].pending_writes == []  # intake's writes were refused too


# -- cost: one round trip per write --------------------------------------------------------


def test_one_round_trip_per_put_and_put_writes(server_url: str, key_prefix: str) -> None:
    pool = redis.ConnectionPool.from_url(server_url, connection_class=CountingConnection)
    counted = redis.Redis(connection_pool=pool)
    observer = redis.Redis.from_url(server_url)
    saver = RedisSaver(counted, prefix=key_prefix)
    try:
        thread = "t-cost"
        config = _config(thread, checkpoint_ns="")
        values = {"a": [1, 2, 3], "b": "x" * 500, "c": {"k": "v"}}
        checkpoint = _checkpoint(values)
        versions = checkpoint["channel_versions"]

        # warm up: connect (handshake) and load the scripts into the server's cache
        warm = saver.put(_config("t-warm", checkpoint_ns=""), checkpoint, {}, versions)
        saver.put_writes(warm, [("a", 1)], "task-0")

        # the first write of a thread also registers it: still a single round trip
        CountingConnection.sends = 0
        stored = saver.put(config, checkpoint, {"step": 0}, versions)
        assert CountingConnection.sends == 1
        assert observer.zscore(f"{key_prefix}:cp:threads", thread) is not None
        saver.put_writes(stored, [("a", 1)], "task-0")

        n = 20
        evalsha_before = _evalsha_calls(observer)
        CountingConnection.sends = 0
        parent = stored
        for step in range(n):
            parent = saver.put(parent, _checkpoint(values), {"step": step + 1}, versions)
        assert CountingConnection.sends == n
        for step in range(n):
            saver.put_writes(parent, [("a", step), ("b", step)], f"task-{step}")
        assert CountingConnection.sends == 2 * n
        assert _evalsha_calls(observer) - evalsha_before == 2 * n

        CountingConnection.sends = 0
        found = saver.get_tuple(_config(thread, checkpoint_ns=""))
        assert CountingConnection.sends == 1
        assert found is not None and len(found.pending_writes or []) == 2 * n
        assert found.checkpoint["channel_values"] == values
    finally:
        saver.close()
        counted.close()
        observer.close()


async def test_async_saver_round_trips(server_url: str, key_prefix: str) -> None:
    observer = redis.Redis.from_url(server_url)
    client = aioredis.Redis.from_url(server_url)
    saver = AsyncRedisSaver(client, prefix=key_prefix)
    try:
        stored = await saver.aput(_config("t-ac", checkpoint_ns=""), _checkpoint(), {}, {})
        before = _evalsha_calls(observer)
        for i in range(10):
            stored = await saver.aput(stored, _checkpoint({"i": i}), {"step": i}, {"i": "1"})
            await saver.aput_writes(stored, [("i", i)], "task")
        assert _evalsha_calls(observer) - before == 20
        found = await saver.aget_tuple(_config("t-ac", checkpoint_ns=""))
        assert found is not None and found.checkpoint["channel_values"] == {"i": 9}
    finally:
        await saver.aclose()
        await client.aclose()
        observer.close()


def test_concurrent_writers_from_threads(saver: RedisSaver) -> None:
    stored = saver.put(_config("t-conc", checkpoint_ns=""), _checkpoint(), {}, {})

    def write(i: int) -> None:
        for j in range(20):
            saver.put_writes(stored, [("c", (i, j))], f"task-{i}-{j}")

    workers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    found = saver.get_tuple(stored)
    assert found is not None and len(found.pending_writes or []) == 80


# -- Redis Cluster: every script stays in one slot ------------------------------------------


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    """A three-primary Redis Cluster on loopback ports (slots split evenly)."""
    binary = redis_binary() or valkey_binary()
    if binary is None:
        pytest.skip("no redis-server or valkey-server to build a cluster with")
    with redis_cluster(binary) as url:
        yield url


def test_sync_saver_on_redis_cluster(cluster_url: str) -> None:
    client = RedisCluster.from_url(cluster_url)
    saver = RedisSaver(client, prefix="cbcluster")
    try:
        graph = _builder().compile(checkpointer=saver)
        threads = [f"case-{uuid.uuid4().hex}" for _ in range(6)]  # spread over the nodes
        for thread in threads:
            graph.invoke({"case": thread, "log": []}, _config(thread), durability="sync")
            final = graph.invoke(Command(resume="ok"), _config(thread), durability="sync")
            assert final["log"][-1] == "act on ok"
        slots = {client.keyslot(f"cbcluster:{{{t}}}:cp:ns") for t in threads}
        assert len({client.nodes_manager.get_node_from_slot(s).name for s in slots}) > 1

        listed = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
        assert set(threads) <= listed
        saver.delete_thread(threads[0])
        assert saver.get_tuple(_config(threads[0])) is None
        client.hset(lease_key("cbcluster", threads[1]), "token", 3)
        with pytest.raises(LeaseLostError):
            saver.put(_config(threads[1], checkpoint_ns="", fencing_token=2), _checkpoint(), {}, {})
        saver.prune(threads[1:], strategy="keep_latest")
        assert len(list(saver.list(_config(threads[1])))) == 1
        saver.copy_thread(threads[1], f"{threads[1]}-copy")
        assert saver.get_tuple(_config(f"{threads[1]}-copy")) is not None
    finally:
        saver.close()
        client.close()


async def test_async_saver_on_redis_cluster(cluster_url: str) -> None:
    client = AsyncRedisCluster.from_url(cluster_url)
    saver = AsyncRedisSaver(client, prefix="cbcluster-async")
    try:
        graph = _builder().compile(checkpointer=saver)
        for _ in range(3):
            thread = f"case-{uuid.uuid4().hex}"
            await graph.ainvoke({"case": "c", "log": []}, _config(thread), durability="sync")
            final = await graph.ainvoke(Command(resume="ok"), _config(thread), durability="sync")
            assert final["decision"] == "ok"
        assert len([t async for t in saver.alist(None)]) >= 3 * 5
    finally:
        await saver.aclose()
        await client.aclose()
