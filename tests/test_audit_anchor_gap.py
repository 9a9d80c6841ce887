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
from typing import Any

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


def _indexed(log: AuditLog, run_id: str) -> list[int]:
    """The seqs of ``run_id``'s events the global audit index points at, in index order."""
    return [e.event.seq for e in log.recent(100) if e.event.run_id == run_id]


def test_the_next_append_indexes_the_event_the_crash_left_out_of_the_global_index(
    cluster_log: ClusterLog,
) -> None:
    """The global index entry is written in the anchor's step: the crash loses it too. The
    run's next append sees the anchor behind and indexes the events after it (once each)."""
    from carebound.audit import Actor

    url, prefix, _client, log = cluster_log
    _crash_after_append(url, prefix, "run-gap")
    assert _indexed(log, "run-gap") == [1, 2]  # event 3 is in the run's chain only
    log.record(
        "run-gap", time=T0, actor=Actor(kind="agent", id="demo"), action="event",
        category="system", outcome="success", detail={"i": 4},
    )  # fmt: skip
    assert sorted(_indexed(log, "run-gap")) == [1, 2, 3, 4]


def test_repair_indexes_a_last_event_the_crash_left_out(cluster_log: ClusterLog) -> None:
    """A run whose last event lost its index entry gets no next append: ``repair_index`` (run
    by ``carebound audit RUN --verify``) indexes it and brings the anchor up; a second repair
    finds nothing to do, and an index entry that did land is not written twice."""
    url, prefix, client, log = cluster_log
    _crash_after_append(url, prefix, "run-gap")
    anchors = f"{prefix}:audit:anchors"
    behind = client.hget(anchors, "run-gap")
    assert log.verify("run-gap", exists=True).notes != []

    assert log.repair_index("run-gap") == [3]
    assert sorted(_indexed(log, "run-gap")) == [1, 2, 3]
    assert client.hget(anchors, "run-gap").startswith(b"3:")
    assert log.verify("run-gap", exists=True).notes == []
    assert log.repair_index("run-gap") == []

    # the crash came after the index entry landed but before the anchor moved
    client.hset(anchors, "run-gap", behind)
    assert log.repair_index("run-gap") == []
    assert sorted(_indexed(log, "run-gap")) == [1, 2, 3]
    assert client.hget(anchors, "run-gap").startswith(b"3:")


def test_audit_verify_indexes_what_the_crash_left_out(
    cluster_log: ClusterLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, demo_case: Any
) -> None:
    """``carebound audit RUN --verify`` on a cluster, for a run whose last event lost its
    index entry and its anchor step (the state the crash above leaves, made here by removing
    both from a parked demo run)."""
    from carebound import Runner
    from tests.test_cli import cli, cli_json
    from tests.test_workers import world_of

    url, prefix, client, log = cluster_log
    monkeypatch.setenv("CAREBOUND_REDIS_URL", url)
    monkeypatch.setenv("CAREBOUND_REDIS_CLUSTER", "1")
    monkeypatch.setenv("CAREBOUND_PREFIX", prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    runner = Runner(client, prefix=prefix)  # type: ignore[arg-type]
    run_id = runner.start("demo", demo_case, requester="sam", world=world_of(demo_case)).run_id
    events = log.events(run_id)
    last, before = events[-1], events[-2]
    index = f"{prefix}:audit"
    [lost] = [i for i, f in client.xrange(index) if f[b"run_id"] == run_id.encode()
              and int(f[b"seq"]) == last.seq]  # fmt: skip
    client.xdel(index, lost)
    client.hset(f"{prefix}:audit:anchors", run_id, f"{before.seq}:{before.hash}")
    assert last.seq not in _indexed(log, run_id)

    report = cli_json("audit", run_id, "--verify")
    assert report["reindexed"] == [last.seq] and report["verify"]["ok"]
    assert report["verify"]["notes"] == []
    assert last.seq in _indexed(log, run_id)
    assert cli_json("audit", run_id, "--verify")["reindexed"] == []
    assert "missing from the global audit index" not in cli("audit", run_id, "--verify").stderr
