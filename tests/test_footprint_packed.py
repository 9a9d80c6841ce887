"""A parked run's checkpoint in one packed key (issue 17): after the engine compacts a run, its
newest checkpoint, that checkpoint's writes and blobs are one msgpack value (``cp:pk``, see
``carebound/checkpoint/_scripts.py``) in place of six hashes, sorted sets and a set; the run's
next drive writes it in place (``tests/test_packed_writes.py``), any other write unpacks it. A
thread stored in the per-namespace layout (written before) still resumes, and a graph of yours
is never packed (the saver keeps its history: conformance)."""

from __future__ import annotations

from typing import Any, TypedDict

import ormsgpack
import redis
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from carebound import Approve, Runner
from carebound.checkpoint import RedisSaver
from carebound.state.keys import text
from carebound.state.pipeline import run as run_pipeline


def _checkpoint_keys(client: redis.Redis, prefix: str, thread_id: str) -> dict[str, int]:
    """The thread's checkpoint keys (after ``{prefix}:{<thread>}:cp:``) and their PTTL."""
    base = f"{prefix}:{{{thread_id}}}:cp:"
    return {
        text(k)[len(base) :]: int(client.pttl(k))
        for k in client.scan_iter(match=f"{base}*", count=1000)
    }


def _approve(runner: Runner, run_id: str) -> str:
    view = runner.get(run_id)
    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    return runner.decide(request.approval_id, decision).run.status


def test_a_parked_runs_checkpoint_is_one_small_key(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused"
    assert set(_checkpoint_keys(redis_client, key_prefix, view.run_id)) == {"pk"}
    size = redis_client.memory_usage(f"{key_prefix}:{{{view.run_id}}}:cp:pk", samples=0)
    # the six per-namespace keys took about 6 KB (four of them in Redis's large encodings)
    assert size is not None and size < 3 * 1024
    assert _approve(runner, view.run_id) == "waiting"
    assert set(_checkpoint_keys(redis_client, key_prefix, view.run_id)) == {"pk"}
    runner.deliver(f"request:{view.run_id}:11506-3", {"document": "progress note"})
    done = runner.get(view.run_id)
    assert done.status == "completed"
    assert [r.tool for r in done.results].count("send_document_request") == 1
    assert runner.verify(view.run_id).ok


def read_packed(client: redis.Redis, key: str) -> list[Any]:
    """A packed thread as the server's Lua msgpack reads it (``[]`` when there is none; a
    blob that is not stored reads None); cmsgpack stores binary values as msgpack strings,
    which Python's msgpack readers refuse as text."""
    unpacked = client.eval(
        "local raw = redis.call('GET', KEYS[1]) if raw then return cmsgpack.unpack(raw) end",
        1,
        key,
    )
    return list(unpacked or [])


def _unpack_by_hand(client: redis.Redis, prefix: str, thread_id: str) -> None:
    """Rewrite a packed thread in the per-namespace layout every earlier version wrote."""
    base = f"{prefix}:{{{thread_id}}}:cp:"
    version, *entries = read_packed(client, f"{base}pk")
    assert version == 1
    for raw_ns, raw_cid, record, meta, blobs, write_fields, write_values in entries:
        ns, cid = text(raw_ns), text(raw_cid)
        client.sadd(f"{base}ns", ns)
        client.zadd(f"{base}ids:{ns}", {cid: 0})
        client.hset(f"{base}rec:{ns}", mapping={cid: record, f"{cid}\x00r": meta})
        refs = ormsgpack.unpackb(meta)[1:]
        stored = {ref: blob for ref, blob in zip(refs, blobs, strict=True) if blob is not None}
        if stored:
            client.hset(f"{base}blob:{ns}", mapping=stored)
        for field, value in zip(write_fields, write_values, strict=True):
            client.hset(f"{base}w:{ns}", field, value)
            client.zadd(f"{base}wx:{ns}", {field: 0})
    client.delete(f"{base}pk")


def test_a_run_stored_in_the_earlier_layout_resumes_and_parks_packed(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    run_id = runner.start("demo", demo_case, requester="sam", world=demo_world).run_id
    graph = runner._graph("demo")
    config: Any = {"configurable": {"thread_id": run_id}}
    before = graph.get_state(config)
    _unpack_by_hand(redis_client, key_prefix, run_id)
    assert {"ns", "ids:", "rec:", "blob:", "w:", "wx:"} <= set(
        _checkpoint_keys(redis_client, key_prefix, run_id)
    )
    after = graph.get_state(config)
    assert after.values == before.values and after.next == before.next
    assert after.tasks[0].interrupts == before.tasks[0].interrupts
    assert _approve(runner, run_id) == "waiting"
    assert set(_checkpoint_keys(redis_client, key_prefix, run_id)) == {"pk"}


class _State(TypedDict):
    n: int


def _asks(state: _State) -> _State:
    return {"n": state["n"] + int(interrupt("how many?"))}


def test_a_packed_thread_keeps_its_ttl_and_a_write_unpacks_it(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    builder = StateGraph(_State)
    builder.add_node("start", lambda s: {"n": s["n"] + 1})
    builder.add_node("asks", _asks)
    builder.add_edge(START, "start")
    builder.add_edge("start", "asks")
    builder.add_edge("asks", END)
    saver = RedisSaver(redis_client, prefix=key_prefix, ttl=600)
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "mine"}}
    graph.invoke({"n": 0}, config, durability="sync")
    history = len(list(graph.get_state_history(config)))
    assert history > 1 and "pk" not in _checkpoint_keys(redis_client, key_prefix, "mine")
    before = graph.get_state(config)
    redis_client.hset(f"{key_prefix}:{{mine}}:lease", "token", "7")
    [reply] = run_pipeline(redis_client, lambda pipe: saver.queue_compact(pipe, "mine", 7))
    assert reply[0] == 1
    packed = _checkpoint_keys(redis_client, key_prefix, "mine")
    assert set(packed) == {"pk"} and 0 < packed["pk"] <= 600_000
    assert len(list(graph.get_state_history(config))) == 1
    assert len(list(saver.list(None))) == 1  # every thread, every namespace: read packed too
    after = graph.get_state(config)
    assert after.values == before.values and after.next == before.next
    assert graph.invoke(Command(resume=5), config, durability="sync") == {"n": 6}
    unpacked = _checkpoint_keys(redis_client, key_prefix, "mine")
    assert "pk" not in unpacked and {"ns", "ids:", "rec:", "blob:"} <= set(unpacked)
    assert all(0 < ttl <= 600_000 for ttl in unpacked.values()), unpacked
    assert len(list(graph.get_state_history(config))) > 1  # history grows again after it
    saver.delete_thread("mine")
    assert _checkpoint_keys(redis_client, key_prefix, "mine") == {}
