"""A recorder killed between its chain append and its anchor step (on a Redis Cluster the anchor
lives in another slot, so it is written second) leaves the anchor one event behind: the chain
must still verify, and a real tamper behind such an anchor must still show.

The crash is real: a child process appends, is stopped just before it sends the anchor step,
and is killed with SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis.cluster import RedisCluster

from carebound.audit import AuditLog
from tests.test_checkpoint_saver import cluster_url  # noqa: F401 (the cluster fixture)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

RECORDER = textwrap.dedent(
    """
    import sys, threading
    from datetime import UTC, datetime
    from redis.cluster import RedisCluster
    from carebound.audit import Actor, AuditLog, _log

    url, prefix, run_id = sys.argv[1:4]
    log = AuditLog(RedisCluster.from_url(url), prefix=prefix)

    def append(i):
        log.record(run_id, time=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
                   actor=Actor(kind="agent", id="demo"), action="event", category="system",
                   outcome="success", detail={"i": i})

    append(1)
    append(2)

    def stop_here(client, fill):  # the anchor step of the next append: never sent
        print("appended", flush=True)
        threading.Event().wait()

    _log.run_pipeline = stop_here
    append(3)
    """
)


def _crash_after_append(url: str, prefix: str, run_id: str) -> None:
    """Run the recorder in a child process and SIGKILL it between append and anchor step."""
    with subprocess.Popen(
        [sys.executable, "-c", RECORDER, url, prefix, run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()  # blocks until the child reached the point, or died
        child.kill()
        child.wait()
        assert line.strip() == "appended", child.stderr.read()


ClusterLog = tuple[str, str, RedisCluster, AuditLog]
"""The cluster's URL, this test's key prefix, a client and an audit log on them."""


@pytest.fixture
def cluster_log(cluster_url: str) -> Iterator[ClusterLog]:  # noqa: F811
    client = RedisCluster.from_url(cluster_url)
    prefix = f"cbgap{uuid.uuid4().hex[:6]}"
    try:
        yield cluster_url, prefix, client, AuditLog(client, prefix=prefix)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            client.delete(key)
        client.close()


def test_a_recorder_killed_before_its_anchor_step_leaves_a_chain_that_verifies(
    cluster_log: ClusterLog,
) -> None:
    url, prefix, client, log = cluster_log
    _crash_after_append(url, prefix, "run-gap")

    assert [e.seq for e in log.events("run-gap")] == [1, 2, 3]
    assert client.hget(f"{prefix}:audit:anchors", "run-gap").startswith(b"2:")  # behind
    result = log.verify("run-gap", exists=True)
    assert result.problems == []
    assert result.ok
    assert any("anchor is 1 event behind" in note for note in result.notes)


def test_the_next_append_brings_a_lagging_anchor_up(cluster_log: ClusterLog) -> None:
    from carebound.audit import Actor

    url, prefix, client, log = cluster_log
    _crash_after_append(url, prefix, "run-gap")
    log.record(
        "run-gap", time=T0, actor=Actor(kind="agent", id="demo"), action="event",
        category="system", outcome="success", detail={"i": 4},
    )  # fmt: skip
    assert client.hget(f"{prefix}:audit:anchors", "run-gap").startswith(b"4:")
    result = log.verify("run-gap", exists=True)
    assert result.ok and result.notes == []


def test_a_lagging_anchor_that_disagrees_with_the_chain_is_still_a_tamper(
    cluster_log: ClusterLog,
) -> None:
    """The lag is accepted only where the anchor still names the event the chain holds at its
    seq: an anchor pointing at another hash means the chain was rewritten after it."""
    url, prefix, client, log = cluster_log
    _crash_after_append(url, prefix, "run-gap")
    client.hset(f"{prefix}:audit:anchors", "run-gap", "2:" + "ab" * 32)

    result = log.verify("run-gap", exists=True)
    assert not result.ok
    assert any("seq 2: hash differs from the run's anchor" in p for p in result.problems)
