"""A parked run's thread stays packed through its next drive (issue 14, decide -> next stop).

The engine packs a run's compacted thread into one key (``cp:pk``) when the run stops. Its
drives write under the run's lease (every write carries the fencing token), and the next stop
keeps only the newest checkpoint again; so a fenced ``put`` or ``put_writes`` changes the packed
value in place (``_put_packed.lua``, ``_add_packed_writes.lua``) instead of unpacking the
thread into its per-namespace keys, which the stop then packed again. What a fenced write
leaves packed is exactly what the unpacked thread would have been packed into; an unfenced
write (a graph of yours) still unpacks it and keeps its history
(``tests/test_footprint_packed.py``). A run that dies inside its effect, its resume write in
the packed key, resumes from it (``tests/test_buffered_checkpoints.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, TypedDict

import redis
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from redis.connection import Connection

from carebound import Approve, Runner, VirtualClock
from carebound.checkpoint import RedisSaver
from carebound.checkpoint._scripts import PUT, PUT_WITH_WRITES, PUT_WRITES
from carebound.state.keys import text
from carebound.state.pipeline import run as run_pipeline
from tests.test_footprint_packed import _checkpoint_keys, _unpack_by_hand, read_packed

TOKEN = 7


class _State(TypedDict):
    n: int
    note: str


def _asks(state: _State) -> dict[str, Any]:
    return {"n": state["n"] + int(interrupt("how many?"))}


def _parked(saver: RedisSaver, client: redis.Redis, prefix: str, thread: str) -> None:
    """``thread`` run to its interrupt, then compacted under a lease as the engine does."""
    builder = StateGraph(_State)
    builder.add_node("start", lambda s: {"n": s["n"] + 1, "note": "x" * 300})
    builder.add_node("asks", _asks)
    builder.add_edge(START, "start")
    builder.add_edge("start", "asks")
    builder.add_edge("asks", END)
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"n": 0, "note": ""}, {"configurable": {"thread_id": thread}}, durability="sync")
    client.hset(f"{prefix}:{{{thread}}}:lease", "token", str(TOKEN))
    [reply] = run_pipeline(client, lambda pipe: saver.queue_compact(pipe, thread, TOKEN))
    assert reply[0] == 1


def _config(thread: str, checkpoint_id: str) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": "",
                             "checkpoint_id": checkpoint_id, "fencing_token": TOKEN}}  # fmt: skip


def _next_checkpoint(parent: Checkpoint) -> Checkpoint:
    """A newer checkpoint after ``parent``: one channel moved, one new."""
    child = empty_checkpoint()
    child["id"] = str(uuid6(clock_seq=-1))
    versions = dict(parent["channel_versions"])
    versions["n"] = "99.0"
    versions["fresh"] = "1.0"
    child["channel_versions"] = versions
    child["channel_values"] = {"n": 41, "fresh": "y" * 250}
    return child


def _fenced_writes(saver: RedisSaver, thread: str, parked: Checkpoint, child: Checkpoint) -> None:
    """The fenced writes a drive makes: writes against the parked checkpoint (a regular write
    sent twice, which keeps its first value, and a special one sent twice, which takes its
    second), then the newer checkpoint ``child`` and a write against it."""
    config = _config(thread, parked["id"])
    saver.put_writes(config, [("n", 1), ("note", "first")], "task-b", "")
    saver.put_writes(config, [("note", "second")], "task-b", "")  # regular: kept as it was
    saver.put_writes(config, [("__resume__", 5)], "task-a", "")
    saver.put_writes(config, [("__resume__", 6)], "task-a", "")  # special: overwritten
    saver.put(config, child, {"source": "loop", "step": 9, "parents": {}, "run_id": "r1"},
              {"n": "99.0", "fresh": "1.0"})  # fmt: skip
    saver.put_writes(_config(thread, child["id"]), [("__interrupt__", "again?")], "task-c", "")


def test_fenced_writes_keep_a_packed_thread_packed_as_compaction_would_pack_it(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver = RedisSaver(redis_client, prefix=key_prefix)
    _parked(saver, redis_client, key_prefix, "kept")
    base = f"{key_prefix}:{{kept}}:cp:"
    # a twin of the parked thread in the per-namespace layout: the path every write took before
    redis_client.set(f"{key_prefix}:{{twin}}:cp:pk", redis_client.get(f"{base}pk") or b"")
    redis_client.hset(f"{key_prefix}:{{twin}}:lease", "token", str(TOKEN))
    _unpack_by_hand(redis_client, key_prefix, "twin")
    parked = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert parked is not None
    runs_before = set(redis_client.zrange(f"{base}runs", 0, -1))

    child = _next_checkpoint(parked.checkpoint)
    for thread in ("kept", "twin"):
        _fenced_writes(saver, thread, parked.checkpoint, child)
    assert set(_checkpoint_keys(redis_client, key_prefix, "kept")) == {"pk", "runs"}
    assert "pk" not in _checkpoint_keys(redis_client, key_prefix, "twin")
    [reply] = run_pipeline(redis_client, lambda pipe: saver.queue_compact(pipe, "twin", TOKEN))
    assert reply[0] == 1

    kept, twin = (
        read_packed(redis_client, f"{base}pk"),
        read_packed(redis_client, f"{key_prefix}:{{twin}}:cp:pk"),
    )
    assert kept == twin
    [(_, cid, _, _, blobs, fields, values)] = kept[1:]
    assert text(cid) != parked.checkpoint["id"] and all(blob is not None for blob in blobs)
    assert len(fields) == len(values) == 1  # the older checkpoint's writes went with it
    runs = set(redis_client.zrange(f"{base}runs", 0, -1))
    assert runs == set(redis_client.zrange(f"{key_prefix}:{{twin}}:cp:runs", 0, -1))
    assert runs != runs_before and any(text(cid) in text(member) for member in runs)

    latest = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert latest is not None and latest.checkpoint["channel_values"] == {
        **parked.checkpoint["channel_values"], "n": 41, "fresh": "y" * 250}  # fmt: skip
    assert [(w[1], w[2]) for w in latest.pending_writes or []] == [("__interrupt__", "again?")]


def test_writes_against_the_parked_checkpoint_are_kept_in_order_as_unpacked(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver = RedisSaver(redis_client, prefix=key_prefix)
    _parked(saver, redis_client, key_prefix, "kept")
    redis_client.set(
        f"{key_prefix}:{{twin}}:cp:pk", redis_client.get(f"{key_prefix}:{{kept}}:cp:pk") or b""
    )
    redis_client.hset(f"{key_prefix}:{{twin}}:lease", "token", str(TOKEN))
    _unpack_by_hand(redis_client, key_prefix, "twin")
    parked = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert parked is not None
    for thread in ("kept", "twin"):
        config = _config(thread, parked.checkpoint["id"])
        saver.put_writes(config, [("n", 1), ("note", "first")], "task-b", "")
        saver.put_writes(config, [("note", "second")], "task-b", "")
        saver.put_writes(config, [("__resume__", 5), ("__error__", "no")], "task-a", "")
        saver.put_writes(config, [("__resume__", 6)], "task-a", "")
    assert set(_checkpoint_keys(redis_client, key_prefix, "kept")) == {"pk"}
    [(_, _, _, _, _, fields, _)] = read_packed(redis_client, f"{key_prefix}:{{kept}}:cp:pk")[1:]
    assert fields == redis_client.zrange(f"{key_prefix}:{{twin}}:cp:wx:", 0, -1)  # byte order
    kept = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    twin = saver.get_tuple({"configurable": {"thread_id": "twin"}})
    assert kept is not None and twin is not None
    assert kept.pending_writes == twin.pending_writes
    writes = kept.pending_writes or []
    assert ("task-a", "__resume__", 6) in writes and ("task-a", "__error__", "no") in writes
    assert ("task-b", "n", 1) in writes and ("task-b", "note", "first") in writes
    # and the graph's own interrupt; ("note", "second") came at index 0, which ("n", 1) kept
    assert len(writes) == 5


def test_an_unfenced_write_or_a_checkpoint_not_newer_still_unpacks(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver = RedisSaver(redis_client, prefix=key_prefix)
    _parked(saver, redis_client, key_prefix, "kept")
    parked = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert parked is not None
    config = _config("kept", parked.checkpoint["id"])
    older = dict(parked.checkpoint)
    older["id"] = "0" + parked.checkpoint["id"][1:]  # sorts before the packed one
    saver.put(config, older, {"source": "loop", "step": 1, "parents": {}}, {})  # type: ignore[arg-type]
    assert "pk" not in _checkpoint_keys(redis_client, key_prefix, "kept")
    assert len(list(saver.list({"configurable": {"thread_id": "kept"}}))) == 2


class _ScriptCounting(Connection):
    """A real connection that counts the checkpoint write scripts it sends, by name."""

    sent: ClassVar[Counter[str]]

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        data = bytes(b"".join(command) if isinstance(command, list) else command)
        for script in (PUT, PUT_WRITES, PUT_WITH_WRITES):
            type(self).sent[script.name] += data.count(script.sha.encode())
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def test_a_decide_writes_its_packed_thread_in_two_script_calls(
    redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    counting = type("Counting", (_ScriptCounting,), {"sent": Counter()})
    client = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=counting)
    )
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request
    counting.sent.clear()
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    assert runner.decide(request.approval_id, decision).run.status == "waiting"
    # the resume write before the fax, then the checkpoint it parks on with its interrupt in
    # one call: the packed thread is read and written twice, not three times
    assert counting.sent == Counter({"checkpoint_put_writes": 1, "checkpoint_put_with_writes": 1})
    assert set(_checkpoint_keys(client, key_prefix, view.run_id)) <= {"pk", "runs"}
    assert runner.verify(view.run_id).ok
    client.close()


def test_a_fenced_write_keeps_the_packed_keys_ttl_or_sets_the_savers(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver = RedisSaver(redis_client, prefix=key_prefix, ttl=600)
    _parked(saver, redis_client, key_prefix, "kept")
    parked = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert parked is not None
    pk = f"{key_prefix}:{{kept}}:cp:pk"
    redis_client.pexpire(pk, 5_000)
    saver.put_writes(_config("kept", parked.checkpoint["id"]), [("n", 1)], "task-b", "")
    keys = _checkpoint_keys(redis_client, key_prefix, "kept")
    assert set(keys) <= {"pk", "runs"} and 5_000 < keys["pk"] <= 600_000  # the saver's TTL
    untimed = RedisSaver(redis_client, prefix=key_prefix)  # no TTL of its own: the key keeps its
    redis_client.pexpire(pk, 5_000)
    untimed.put_writes(_config("kept", parked.checkpoint["id"]), [("note", "a")], "task-b", "")
    assert 0 < redis_client.pttl(pk) <= 5_000
