"""Pipelines that carry scripts (carebound.state.pipeline): one round trip, and safe after a
server lost its scripts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from carebound import Approve, Runner
from carebound.state.lua import Script
from carebound.state.pipeline import run
from tests.test_checkpoint_saver import cluster_url  # noqa: F401 (the cluster fixture)

_ECHO = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"


def test_a_flushed_script_is_loaded_and_the_pipeline_sent_again(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    script = Script.from_source("echo", _ECHO)
    key = f"{key_prefix}:echo"

    def fill(pipe: redis.client.Pipeline) -> None:
        pipe.incr(f"{key}:sent")
        script.queue(pipe, [key], ["hi"])

    assert run(redis_client, fill)[-1] == b"hi"  # loaded before its first use: sent once
    assert redis_client.get(f"{key}:sent") == b"1"
    redis_client.script_flush()  # the server loses its scripts behind this process's back

    replies = run(redis_client, fill)

    assert replies[-1] == b"hi"
    assert redis_client.get(key) == b"hi"
    # The send met NOSCRIPT after the INCR ran, so the INCR went twice: only commands that
    # are safe to repeat belong in such a pipeline.
    assert redis_client.get(f"{key}:sent") == b"3"


def test_a_pipeline_whose_scripts_are_partly_loaded_runs_once(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """A server with one of a pipeline's scripts and not the other (a new version's changed
    script): nothing in the pipeline runs twice."""
    loaded = Script.from_source("echo", _ECHO)
    fresh = Script.from_source("fresh", _ECHO + " -- " + key_prefix)  # unknown to the server
    redis_client.script_load(_ECHO)
    key = f"{key_prefix}:count"

    def fill(pipe: redis.client.Pipeline) -> None:
        loaded.queue(pipe, [f"{key}:a"], ["a"])
        pipe.incr(key)
        fresh.queue(pipe, [f"{key}:b"], ["b"])

    replies = run(redis_client, fill)

    assert replies == [b"a", 1, b"b"]
    assert redis_client.get(key) == b"1"


def test_on_a_cluster_a_script_new_to_the_servers_is_loaded_first_and_nothing_runs_twice(
    cluster_url: str,  # noqa: F811
) -> None:
    """A cluster pipeline's scripts are loaded on every primary before it is sent, as on a
    single server: nothing in it runs twice (a re-sent settle lost its audit append's reply,
    so the chain's anchor on the cluster stayed an event behind)."""
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(cluster_url)
    prefix = f"cbpipe{uuid.uuid4().hex[:6]}"
    fresh = Script.from_source("fresh", _ECHO + " -- " + prefix)  # unknown to the servers
    key = f"{prefix}:{{t}}:count"

    def fill(pipe: redis.client.Pipeline) -> None:
        pipe.incr(key)
        fresh.queue(pipe, [f"{prefix}:{{t}}:echo"], ["b"])

    try:
        assert run(client, fill) == [1, b"b"]  # type: ignore[arg-type]
        assert client.get(key) == b"1"
    finally:
        client.delete(key, f"{prefix}:{{t}}:echo")
        client.close()


def test_an_error_reply_is_raised(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}:text"
    redis_client.set(key, "not a list")

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        run(redis_client, lambda pipe: pipe.lpush(key, "x"))


def test_decide_after_the_server_lost_its_scripts(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request
    runner.client.script_flush()

    result = runner.decide(
        request.approval_id,
        Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash),
    )

    assert result.outcome == "decided"
    assert result.run.status == "waiting"
    assert [e.status for e in result.run.effects] == ["done"]
    assert runner.pending(role="intake_coordinator") == []
    assert runner.verify(view.run_id).ok
