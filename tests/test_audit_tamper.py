"""Rewriting a run's audit trail is detected: every tamper kind, on real Redis, via the library
and the real CLI (``carebound audit RUN --verify`` exits 1).

The fifteen tamper kinds and where each is tested:

Detected by the plain hash chain (``tests/test_audit.py::test_tampering_is_detected``):

1. a field of an event changed ("field changed");
2. a detail value changed ("detail changed");
3. a field added to an event ("field added");
4. an event's stored hash replaced ("hash changed");
5. an event altered and rehashed, the chain left as is ("altered and rehashed");
6. an event removed from the middle or the end ("middle removed", "last removed", and
   ``test_xdel_of_middle_and_last_entries``);
7. two events swapped ("reordered");
8. an event stored twice ("duplicated").

Detected by the keyed MACs, the run's anchor outside its keys, or both (this module):

9. the tail cut and the head reset (``test_tail_cut_and_head_reset``);
10. the whole stream rewritten with recomputed hashes, blaming another reviewer
    (``test_whole_stream_rewritten_to_blame_another_reviewer``);
11. the decision event removed and the rest re-chained
    (``test_decision_event_removed_and_rechained``);
12. a forged, correctly chained event appended (``test_forged_chained_event_appended``);
13. an event backdated and the chain recomputed (``test_event_backdated``);
14. the stream and the head deleted (``test_stream_and_head_deleted``): never "OK, 0 events"
    for a run that exists;
15. another run's events transplanted, relabelled and re-chained
    (``test_transplanted_from_another_run``).

``test_property_any_rewrite_without_the_key_is_detected`` generalises 10-13: whatever single
event is changed, removed or added, with every later hash re-chained and head and anchor reset
to match, the chain does not verify. A cluster test checks the anchor where it lives in another
slot.

The attacker here can write every Redis key (the anchors hash included, unless a test says
otherwise) and knows the algorithms, but not the audit key. Exported checkpoints that catch a
rewrite of the anchors too are tested in ``tests/test_audit_cli.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from carebound import Approve, Runner
from carebound.cli import app
from carebound.state.audit_codec import unpack_event
from carebound.state.keys import run_key
from tests.test_checkpoint_saver import cluster_url  # noqa: F401 (the cluster fixture)

GENESIS = "0" * 64
ATTACKER_KEY = b"the attacker's guess at the audit key"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Decided:
    """A demo run whose hold casey approved: create ... hold, decision, effect."""

    runner: Runner
    client: redis.Redis
    prefix: str
    run_id: str


def _decided_run(runner: Runner, case: Any, world: Any) -> str:
    run = runner.start("demo", case, requester="sam", world=world)
    assert run.pending is not None
    hold = run.pending.request
    runner.decide(
        hold.approval_id,
        Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash),
    )
    return run.run_id


@pytest.fixture
def decided(
    make_runner: Any,
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: Any,
    demo_world: Any,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    tmp_path: Any,
) -> Iterator[Decided]:
    runner = make_runner()
    run_id = _decided_run(runner, demo_case, demo_world)
    assert runner.verify(run_id).ok
    # the CLI on the same store and key space
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    yield Decided(runner, redis_client, key_prefix, run_id)


# -- the attacker's tools: everything but the audit key ---------------------------------------


def stream(d: Decided, run_id: str | None = None) -> str:
    return run_key(d.prefix, run_id or d.run_id, "audit")


def head(d: Decided, run_id: str | None = None) -> str:
    return run_key(d.prefix, run_id or d.run_id, "audit", "head")


def anchors(d: Decided) -> str:
    return f"{d.prefix}:audit:anchors"


def stored(d: Decided, run_id: str | None = None) -> list[dict[str, Any]]:
    entries = d.client.xrange(stream(d, run_id)) or []
    return [json.loads(unpack_event(fields[b"event"])) for _, fields in entries]


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def seal(item: dict[str, Any]) -> None:
    """Recompute the event's hash (and, lacking the key, a MAC under a guessed one)."""
    body = {k: v for k, v in item.items() if k not in ("hash", "mac")}
    item["hash"] = hashlib.sha256(canonical(body).encode()).hexdigest()
    if "mac" in item:
        message = b"carebound-audit-event:" + item["hash"].encode()
        item["mac"] = hmac.new(ATTACKER_KEY, message, hashlib.sha256).hexdigest()


def rechain(items: list[dict[str, Any]], start: int = 0) -> None:
    """Renumber and relink ``items[start:]`` with recomputed hashes."""
    for i in range(start, len(items)):
        items[i]["seq"] = i + 1
        items[i]["prev_hash"] = items[i - 1]["hash"] if i else GENESIS
        seal(items[i])


def rewrite(
    d: Decided, items: list[dict[str, Any]], *, anchor: bool, run_id: str | None = None
) -> None:
    """Replace the run's stream with ``items`` and set its head to match (and, with
    ``anchor``, the run's anchor outside its keys too)."""
    run_id = run_id or d.run_id
    d.client.delete(stream(d, run_id))
    for item in items:
        d.client.xadd(stream(d, run_id), {"event": canonical(item)})
    last = items[-1]
    d.client.hset(head(d, run_id), mapping={"seq": last["seq"], "hash": last["hash"]})
    if anchor:
        d.client.hset(anchors(d), run_id, f"{last['seq']}:{last['hash']}")


def assert_broken(d: Decided, *fragments: str) -> list[str]:
    """The library and the CLI both say the chain is broken, naming ``fragments``."""
    result = d.runner.verify(d.run_id)
    assert not result.ok, "the tampered chain verified"
    text = "\n".join(result.problems)
    for fragment in fragments:
        assert fragment in text, text
    cli = CliRunner().invoke(app, ["audit", d.run_id, "--verify", "--json"])
    assert cli.exit_code == 1, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["verify"]["ok"] is False
    assert "Traceback" not in cli.stdout + cli.stderr
    return result.problems


def decision_index(items: list[dict[str, Any]]) -> int:
    return next(i for i, item in enumerate(items) if item["action"] == "decision")


# -- the seven kinds a plain hash chain misses ------------------------------------------------


def test_tail_cut_and_head_reset(decided: Decided) -> None:
    items = stored(decided)
    assert len(items) >= 5
    cut = items[:-2]  # the effect and the decision's consequences vanish

    rewrite(decided, cut, anchor=False)  # only the run's own keys are rewritten

    assert_broken(decided, f"anchor records seq {len(items)}", f"ends at seq {len(cut)}")


def test_whole_stream_rewritten_to_blame_another_reviewer(decided: Decided) -> None:
    items = stored(decided)
    items[decision_index(items)]["actor"]["id"] = "jordan"
    rechain(items)

    rewrite(decided, items, anchor=True)

    problems = assert_broken(decided, "MAC mismatch")
    assert len([p for p in problems if "MAC mismatch" in p]) == len(items)  # every hash changed


def test_decision_event_removed_and_rechained(decided: Decided) -> None:
    items = stored(decided)
    at = decision_index(items)
    del items[at]
    rechain(items, start=at)

    rewrite(decided, items, anchor=True)

    problems = assert_broken(decided, f"seq {at + 1} (entry", "MAC mismatch")
    assert not any(f"seq {n} (entry" in p for p in problems for n in range(1, at + 1))


def test_forged_chained_event_appended(decided: Decided) -> None:
    items = stored(decided)
    forged = {**items[decision_index(items)]}
    forged["detail"] = {**forged["detail"], "decision": "reject", "outcome": "ok"}
    forged["seq"] = len(items) + 1
    forged["prev_hash"] = items[-1]["hash"]
    seal(forged)

    rewrite(decided, [*items, forged], anchor=True)

    problems = assert_broken(decided, f"seq {len(items) + 1} (entry", "MAC mismatch")
    assert len(problems) == 1, problems  # only the forged event is wrong


def test_event_backdated(decided: Decided) -> None:
    items = stored(decided)
    at = decision_index(items)
    when = datetime.fromisoformat(items[at]["time"].replace("Z", "+00:00"))
    items[at]["time"] = (when - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rechain(items, start=at)

    rewrite(decided, items, anchor=True)

    assert_broken(decided, f"seq {at + 1} (entry", "MAC mismatch")


def test_stream_and_head_deleted(decided: Decided) -> None:
    decided.client.delete(stream(decided), head(decided))

    assert_broken(decided, "empty", "deleted")
    assert decided.runner.verify(decided.run_id).count == 0

    decided.client.hdel(anchors(decided), decided.run_id)  # the anchor as well

    assert_broken(decided, "the run exists but its audit chain is empty")


def test_transplanted_from_another_run(decided: Decided, demo_case: Any, demo_world: Any) -> None:
    other = _decided_run(decided.runner, demo_case, demo_world)
    items = stored(decided, other)
    for item in items:
        item["run_id"] = decided.run_id
    rechain(items)

    rewrite(decided, items, anchor=True)

    assert_broken(decided, "MAC mismatch")


def test_verbatim_transplant_names_the_other_run(
    decided: Decided, demo_case: Any, demo_world: Any
) -> None:
    other = _decided_run(decided.runner, demo_case, demo_world)

    rewrite(decided, stored(decided, other), anchor=True)

    assert_broken(decided, f"belongs to run {other!r}")


# -- on a Redis Cluster, where the anchor lives in another slot ---------------------------------


def test_on_a_cluster_the_anchor_is_written_and_checked(cluster_url: str) -> None:  # noqa: F811
    from redis.cluster import RedisCluster

    from carebound.audit import Actor, AuditLog

    client = RedisCluster.from_url(cluster_url)
    prefix = f"cbaudit{uuid.uuid4().hex[:6]}"
    log = AuditLog(client, prefix=prefix)
    try:
        for i in range(4):
            log.record(
                "run-cl", time=T0, actor=Actor(kind="agent", id="demo"), action="event",
                category="system", outcome="success", detail={"i": i},
            )  # fmt: skip
        assert log.verify("run-cl", exists=True).ok
        head_key = f"{prefix}:{{run-cl}}:audit:head"
        assert client.hget(f"{prefix}:audit:anchors", "run-cl") == b"4:" + client.hget(
            head_key, "hash"
        )

        stream_key = f"{prefix}:{{run-cl}}:audit"
        entries = client.xrange(stream_key)
        client.xdel(stream_key, entries[-1][0])  # cut the tail, reset the head
        third = json.loads(unpack_event(entries[-2][1][b"event"]))
        client.hset(head_key, mapping={"seq": 3, "hash": third["hash"]})

        problems = log.verify("run-cl", exists=True).problems
        assert any("anchor records seq 4 but the chain ends at seq 3" in p for p in problems)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            client.delete(key)
        client.close()


def test_on_a_cluster_a_late_anchor_write_never_moves_the_anchor_back(
    cluster_url: str,  # noqa: F811
) -> None:
    """On a cluster the anchor is written after the chain, in a second step: a writer whose
    anchor write lands after another writer's newer event (two workers, a reviewer's process)
    must not move the anchor back (seen once: a run's anchor stayed at its hold, seq 5, while
    its chain had the settle's status event, seq 6, and verify failed)."""
    from redis.cluster import RedisCluster

    from carebound.audit import Actor, AuditLog

    prefix = f"cbaudit{uuid.uuid4().hex[:6]}"
    anchors = f"{prefix}:audit:anchors"

    class LetsAnotherWriterIn(RedisCluster):
        """Runs ``between`` once, just before its next pipeline that writes the anchors hash
        is sent: the other writer's whole append lands between this one's two steps."""

        between: Any = None

        def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
            pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
            queued: list[Any] = []
            queue, send = pipe.execute_command, pipe.execute

            def execute_command(*args: Any, **options: Any) -> Any:
                queued.append(args)
                return queue(*args, **options)

            def execute(*args: Any, **kwargs: Any) -> Any:
                hook, self.between = self.between, None
                if hook is not None and any(anchors in map(str, a) for a in queued):
                    hook()
                else:
                    self.between = hook
                return send(*args, **kwargs)

            pipe.execute_command, pipe.execute = execute_command, execute
            return pipe

    first = LetsAnotherWriterIn.from_url(cluster_url)
    second = RedisCluster.from_url(cluster_url)
    log, other = AuditLog(first, prefix=prefix), AuditLog(second, prefix=prefix)

    def append(to: AuditLog, i: int) -> None:
        to.record(
            "run-race", time=T0, actor=Actor(kind="agent", id="demo"), action="event",
            category="system", outcome="success", detail={"i": i},
        )  # fmt: skip

    try:
        append(log, 1)
        first.between = lambda: append(other, 3)
        append(log, 2)  # seq 2 in the chain; then seq 3 (chain and anchor); then 2's anchor
        assert [e.seq for e in log.events("run-race")] == [1, 2, 3]
        assert second.hget(anchors, "run-race").startswith(b"3:")
        assert log.verify("run-race", exists=True).ok
    finally:
        for key in second.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            second.delete(key)
        first.close()
        second.close()


def test_on_a_cluster_an_append_whose_reply_was_lost_still_moves_the_anchor(
    cluster_url: str,  # noqa: F811
) -> None:
    """A pipeline sent twice (the servers lost one of its scripts after this process loaded
    it) gets DUPLICATE for an append its first send made: the anchor still follows it."""
    from redis.cluster import RedisCluster

    from carebound.audit import Actor, AuditLog
    from carebound.audit._chain import RECORD_SCRIPT
    from carebound.state.lua import Script
    from carebound.state.pipeline import run

    client = RedisCluster.from_url(cluster_url)
    prefix = f"cbaudit{uuid.uuid4().hex[:6]}"
    log = AuditLog(client, prefix=prefix)
    other = Script.from_source("other", "return 1 -- " + prefix)
    fields: dict[str, Any] = {
        "time": T0, "actor": Actor(kind="agent", id="demo"), "action": "event",
        "category": "system", "outcome": "success",
    }  # fmt: skip
    try:
        log.record("run-lost", **fields, detail={"i": 1})
        run(client, lambda pipe: other.queue(pipe, [f"{prefix}:{{run-lost}}:x"], []))  # loaded
        client.script_flush()  # every primary loses them
        client.script_load(RECORD_SCRIPT.source)  # ... and get the append back, not the other
        parsers = []

        def fill(pipe: Any) -> None:
            parsers.append(log.queue_record(pipe, "run-lost", once="second", **fields))
            other.queue(pipe, [f"{prefix}:{{run-lost}}:x"], [])

        replies = run(client, fill)  # NOSCRIPT for the other script: sent again

        assert parsers[-1](replies[0])  # the second send found the event: DUPLICATE
        assert [e.seq for e in log.events("run-lost")] == [1, 2]
        assert client.hget(f"{prefix}:audit:anchors", "run-lost").startswith(b"2:")
        assert log.verify("run-lost", exists=True).ok
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", target_nodes=RedisCluster.ALL_NODES):
            client.delete(key)
        client.close()


# -- any consistent rewrite without the key -------------------------------------------------


def _mutate(items: list[dict[str, Any]], at: int, how: str, value: str) -> None:
    if how == "outcome":
        items[at]["outcome"] = "denied" if items[at]["outcome"] != "denied" else "success"
    elif how == "actor":
        items[at]["actor"] = {**items[at]["actor"], "id": items[at]["actor"]["id"] + value}
    elif how == "time":
        items[at]["time"] = "2020-01-01T00:00:00.000000Z"
    elif how == "detail":
        items[at]["detail"] = {**items[at]["detail"], "i": value}
    elif how == "remove":  # a middle event (cutting the tail is test_tail_cut_and_head_reset's)
        del items[min(at, len(items) - 2)]
    else:  # "insert": a copy of the event, relabelled, slipped in before it
        items.insert(at, {**items[at], "category": "forged"})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    at=st.integers(min_value=0, max_value=5),
    how=st.sampled_from(["outcome", "actor", "time", "detail", "remove", "insert"]),
    value=st.text(alphabet="abcxyz", min_size=1, max_size=3),
)
def test_property_any_rewrite_without_the_key_is_detected(
    redis_client: redis.Redis, key_prefix: str, at: int, how: str, value: str
) -> None:
    """Whatever one event an attacker changes, removes or adds, re-chaining every hash after it
    and resetting the head and the anchor to match, the chain does not verify."""
    from carebound.audit import Actor, AuditLog

    log = AuditLog(redis_client, prefix=key_prefix)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    for i in range(6):
        log.record(
            run_id, time=T0, actor=Actor(kind="agent", id="demo"), action="event",
            category="system", outcome="success", detail={"i": i},
        )  # fmt: skip
    d = Decided(runner=None, client=redis_client, prefix=key_prefix, run_id=run_id)  # type: ignore[arg-type]
    items = stored(d)
    _mutate(items, at, how, value)
    rechain(items, start=min(at, len(items) - 1))  # every event from the change on

    rewrite(d, items, anchor=True)

    result = log.verify(run_id, exists=True)
    assert not result.ok
    assert any("MAC mismatch" in p for p in result.problems), result.problems
