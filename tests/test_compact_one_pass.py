"""The settle's checkpoint compaction packs a thread in one pass (``pack_latest``, issue 14: the
decide's Redis time): the newest checkpoint of each namespace, its writes and blobs are read
and packed, and the thread's keys deleted whole, instead of first deleting the superseded
checkpoints, their writes and the unreferenced blobs field by field (``keep_latest``) and then
reading what is left (``pack_thread``). The packed value and the run index come out the same."""

from __future__ import annotations

from typing import Any

import redis
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from carebound.checkpoint import RedisSaver
from carebound.state.lua._loader import _with_helpers
from carebound.state.pipeline import run as run_pipeline
from tests.test_footprint_packed import _asks, _State

THREAD = "mine"
RUN = "run-1"


def _graph(saver: RedisSaver) -> Any:
    builder = StateGraph(_State)
    builder.add_node("start", lambda s: {"n": s["n"] + 1})
    builder.add_node("asks", _asks)
    builder.add_edge(START, "start")
    builder.add_edge("start", "asks")
    builder.add_edge("asks", END)
    return builder.compile(checkpointer=saver)


def _thread_with_history(client: redis.Redis, prefix: str) -> tuple[RedisSaver, str]:
    """A thread of several checkpoints, with what keep_latest drops besides them: a write
    against a checkpoint never put, a blob no checkpoint refers to, and a superseded
    checkpoint listed in the run index. Returns the saver and the thread's key base."""
    saver = RedisSaver(client, prefix=prefix)
    _graph(saver).invoke({"n": 0}, {"configurable": {"thread_id": THREAD}}, durability="sync")
    base = f"{prefix}:{{{THREAD}}}:cp:"
    oldest = client.zrange(f"{base}ids:", 0, 0)[0].decode()
    stray = "ffffffff-never-put\x00task\x000"
    client.hset(f"{base}w:", stray, "x")
    client.zadd(f"{base}wx:", {stray: 0})
    client.hset(f"{base}blob:", "ghost\x000000000009.0", "x")
    client.eval(  # the oldest checkpoint as one written under a run id (its run index member)
        "local m = cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1] .. '\\0r'))"
        " m[1] = ARGV[2] redis.call('HSET', KEYS[1], ARGV[1] .. '\\0r', cmsgpack.pack(m))"
        " redis.call('ZADD', KEYS[2], 0, ARGV[2] .. '\\0\\0' .. ARGV[1])",
        2,
        f"{base}rec:",
        f"{base}runs",
        oldest,
        RUN,
    )
    client.hset(f"{prefix}:{{{THREAD}}}:lease", "token", "7")
    return saver, base


def _compact(client: redis.Redis, saver: RedisSaver) -> list[Any]:
    return run_pipeline(client, lambda pipe: saver.queue_compact(pipe, THREAD, 7))


def _keys(client: redis.Redis, base: str) -> dict[str, Any]:
    """The thread's keys and their values (strings, hashes, sets, sorted sets)."""
    found: dict[str, Any] = {}
    for key in client.scan_iter(match=f"{base}*", count=1000):
        name, kind = key.decode()[len(base) :], client.type(key).decode()
        if kind == "string":
            found[name] = client.get(key)
        elif kind == "hash":
            found[name] = client.hgetall(key)
        elif kind == "set":
            found[name] = client.smembers(key)
        else:
            found[name] = client.zrange(key, 0, -1)
    return found


def test_compaction_packs_without_deleting_field_by_field(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver, base = _thread_with_history(redis_client, key_prefix)
    assert redis_client.zcard(f"{base}ids:") > 1
    redis_client.config_resetstat()
    [reply] = _compact(redis_client, saver)
    stats: dict[str, Any] = redis_client.info("commandstats")
    assert reply[0] == 1
    assert set(_keys(redis_client, base)) == {"pk"}
    # keep_latest's field-by-field deletes of what the packing then deleted whole
    for command in ("hdel", "hkeys"):
        assert f"cmdstat_{command}" not in stats, stats[f"cmdstat_{command}"]
    assert stats["cmdstat_zrangebylex"]["calls"] == 1  # the newest checkpoint's writes only
    assert redis_client.zrange(f"{base}runs", 0, -1) == []  # the superseded member went


def test_the_one_pass_packs_what_the_two_steps_pack(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    saver, base = _thread_with_history(redis_client, key_prefix)
    keys = list(redis_client.scan_iter(match=f"{base}*", count=1000))
    dumps = {key: redis_client.dump(key) for key in keys}
    [reply] = _compact(redis_client, saver)
    assert reply[0] == 1
    one_pass = _keys(redis_client, base)
    for key, dumped in dumps.items():
        redis_client.restore(key, 0, dumped, replace=True)
    redis_client.delete(f"{base}pk")
    two_steps = _with_helpers(
        "keep_latest(ARGV[1], KEYS[1], KEYS[2])\npack_thread(ARGV[1], KEYS[1])\nreturn 1"
    )
    assert redis_client.eval(two_steps, 2, f"{base}ns", f"{base}runs", base) == 1
    assert _keys(redis_client, base) == one_pass
    assert set(one_pass) == {"pk"}
    # and the packed thread resumes
    graph = _graph(saver)
    config: Any = {"configurable": {"thread_id": THREAD}}
    assert graph.invoke(Command(resume=5), config, durability="sync") == {"n": 6}
