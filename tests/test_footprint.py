"""What a parked run keeps in Redis (issue 17): its newest checkpoint only, and a reference to
its policy pack, which is stored once per content digest. ``benchmarks/footprint.py`` measures
the bytes; these tests pin what is kept and that a run still resumes from it."""

from __future__ import annotations

import json
from typing import Any

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from carebound import Approve, Runner, VirtualClock
from carebound._phi_table import table_json
from carebound.checkpoint import RedisSaver
from carebound.state import deflate
from carebound.state.pipeline import run as run_pipeline
from carebound.state.runs import RunStore
from tests.test_footprint_packed import read_packed


def _packed(client: redis.Redis, prefix: str, run_id: str) -> list[Any]:
    """The namespaces of the run's packed thread (``cp:pk``, see checkpoint/_scripts), if any."""
    return list(read_packed(client, f"{prefix}:{{{run_id}}}:cp:pk")[1:])


def _checkpoints(client: redis.Redis, prefix: str, run_id: str) -> int:
    """How many checkpoints the run's thread holds, over all its namespaces, packed or not."""
    base = f"{prefix}:{{{run_id}}}:cp:"
    loose = sum(int(client.zcard(key)) for key in client.scan_iter(match=f"{base}ids:*"))
    return loose + len(_packed(client, prefix, run_id))


def _writes(client: redis.Redis, prefix: str, run_id: str) -> int:
    base = f"{prefix}:{{{run_id}}}:cp:"
    loose = sum(int(client.zcard(key)) for key in client.scan_iter(match=f"{base}wx:*"))
    return loose + sum(len(entry[5]) for entry in _packed(client, prefix, run_id))


def _approve_and_wait(runner: Runner, run_id: str) -> None:
    """``runner`` (a process that did not start the run) approves its hold; the run waits."""
    view = runner.get(run_id)
    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    assert runner.decide(request.approval_id, decision).run.status == "waiting"


def test_a_parked_run_keeps_only_its_newest_checkpoint_and_still_resumes(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    assert _checkpoints(redis_client, key_prefix, view.run_id) == 1
    # the newest checkpoint keeps its writes: the hold's interrupt is one of them
    assert _writes(redis_client, key_prefix, view.run_id) >= 1
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    waiting = runner.decide(request.approval_id, decision).run
    assert waiting.status == "waiting"
    assert _checkpoints(redis_client, key_prefix, view.run_id) == 1
    woken = runner.deliver(f"request:{view.run_id}:11506-3", {"document": "progress note"})
    assert woken == [view.run_id]
    done = runner.get(view.run_id)
    assert done.status == "completed"
    assert [r.tool for r in done.results].count("send_document_request") == 1
    assert _checkpoints(redis_client, key_prefix, view.run_id) == 1
    assert runner.verify(view.run_id).ok


def test_a_compaction_fenced_out_drops_nothing(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    run_id = view.run_id
    saver = RedisSaver(redis_client, prefix=key_prefix)
    graph = runner._graph("demo")
    config: Any = {"configurable": {"thread_id": run_id}}
    # a second checkpoint on the thread, written without a lease (as a tool of yours might)
    graph.update_state(config, {"summary": "noted"})
    assert _checkpoints(redis_client, key_prefix, run_id) == 2
    before = graph.get_state(config)
    lease_key = f"{key_prefix}:{{{run_id}}}:lease"
    current = redis_client.hget(lease_key, "token")
    assert current is not None
    stale = int(current) - 1
    [reply] = run_pipeline(redis_client, lambda pipe: saver.queue_compact(pipe, run_id, stale))
    assert reply[0] == 0
    assert _checkpoints(redis_client, key_prefix, run_id) == 2
    [reply] = run_pipeline(
        redis_client, lambda pipe: saver.queue_compact(pipe, run_id, int(current))
    )
    assert reply[0] == 1
    assert _checkpoints(redis_client, key_prefix, run_id) == 1
    after = graph.get_state(config)
    assert after.values["summary"] == "noted"
    assert after.values == before.values and after.next == before.next


def test_a_graph_of_yours_keeps_its_history(redis_client: redis.Redis, key_prefix: str) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        n: int

    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"n": s["n"] + 1})
    builder.add_node("b", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    saver = RedisSaver(redis_client, prefix=key_prefix)
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "mine"}}
    graph.invoke({"n": 0}, config, durability="sync")
    assert len(list(graph.get_state_history(config))) == 4  # input, a, b, end


def test_the_policy_pack_is_stored_once_and_read_back_in_a_new_process(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    ids = [
        runner.start("demo", demo_case, requester="sam", world=demo_world).run_id for _ in range(3)
    ]
    packs = list(redis_client.scan_iter(match=f"{key_prefix}:pack:*"))
    assert len(packs) == 1
    digest = packs[0].decode().rsplit(":", 1)[1]
    for run_id in ids:
        field = redis_client.hget(f"{key_prefix}:{{{run_id}}}:run", "pack")
        assert field == digest.encode()
    cold = Runner(redis_client, prefix=key_prefix, clock=VirtualClock())
    assert cold.pack_for(ids[0]) == runner.pack_for(ids[0])
    _approve_and_wait(cold, ids[1])


def test_a_parked_runs_hash_is_a_listpack_and_reads_back(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """The run hash keeps every value short (the record one field per record field, the case
    in its own key, bare digests), so Redis keeps it as a listpack: one value over 64 bytes
    made it a hashtable of about twice the bytes. A new process reads the record back."""
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    key = f"{key_prefix}:{{{view.run_id}}}:run"
    assert redis_client.object("encoding", key) == b"listpack"
    assert max(len(v) for v in redis_client.hvals(key)) <= 64
    cold = RunStore(redis_client, prefix=key_prefix)
    assert cold.get(view.run_id) == view.record
    assert cold.case(view.run_id) == demo_case


def test_a_policy_pack_is_parsed_once_per_content(tmp_path: Any) -> None:
    from carebound.guardrails import load_policy_pack
    from carebound.guardrails._pack import _builtin_pack

    first = load_policy_pack("default")
    assert load_policy_pack("default") is first  # a start no longer re-parses the YAML
    source = _builtin_pack("default")
    assert source is not None
    copy = tmp_path / "pack.yaml"
    copy.write_text(source.read_text())
    assert load_policy_pack(copy) is first  # same content, same digest
    edited = source.read_text().replace(f'version: "{first.version}"', "version: edited-1", 1)
    assert edited != source.read_text()
    copy.write_text(edited)
    changed = load_policy_pack(copy)
    assert changed.version == "edited-1" and changed is not first


def test_the_case_is_stored_deflated_and_the_phi_table_once(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """A run keeps its case deflated and its agent's PHI table as a digest reference (the
    table itself once per content); a new process reads both back and resumes the run."""
    runner: Runner = make_runner()
    ids = [
        runner.start("demo", demo_case, requester="sam", world=demo_world).run_id for _ in range(2)
    ]
    stored = redis_client.hgetall(f"{key_prefix}:{{{ids[0]}}}:run")
    case = redis_client.get(f"{key_prefix}:{{{ids[0]}}}:case")
    assert case is not None and case.startswith(b"~c1:")
    assert len(case) < len(json.dumps(demo_case)) * 0.4
    [table] = redis_client.scan_iter(match=f"{key_prefix}:phi:*")
    assert table.endswith(b":" + stored[b"phi"])
    cold = Runner(redis_client, prefix=key_prefix, clock=VirtualClock())
    store = RunStore(redis_client, prefix=key_prefix)
    assert store.case(ids[0]) == demo_case
    assert store.phi_json(ids[0]) == table_json(cold._core.agent("demo").tools)
    _approve_and_wait(cold, ids[1])
    assert cold.verify(ids[1]).ok


def test_a_run_stored_with_a_plain_case_still_reads(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    run_id = runner.start("demo", demo_case, requester="sam", world=demo_world).run_id
    # how cases were stored before they were deflated
    redis_client.set(f"{key_prefix}:{{{run_id}}}:case", json.dumps(demo_case))
    store = RunStore(redis_client, prefix=key_prefix)
    assert store.case(run_id) == demo_case
    cold = Runner(redis_client, prefix=key_prefix, clock=VirtualClock())
    _approve_and_wait(cold, run_id)


def test_a_parked_runs_audit_stream_is_rewritten_to_its_size(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """When a run stops its audit stream is rewritten with exact-size nodes: smaller than the
    same entries appended afresh (Redis keeps 4 KB for a stream's newest node), with the same
    ids and events, a chain that verifies, its TTL kept, and appends after it still chain."""
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    stream = f"{key_prefix}:{{{view.run_id}}}:audit"
    entries = redis_client.xrange(stream)
    fresh = f"{key_prefix}:fresh"
    for entry_id, fields in entries:
        redis_client.xadd(fresh, fields, id=entry_id)
    compacted = redis_client.memory_usage(stream, samples=0)
    assert compacted is not None
    assert compacted < (redis_client.memory_usage(fresh, samples=0) or 0) - 1024
    redis_client.pexpire(stream, 3_600_000)
    log = runner._core.audit_log
    run_pipeline(redis_client, lambda pipe: log.queue_compact(pipe, view.run_id))
    assert 0 < redis_client.pttl(stream) <= 3_600_000
    assert redis_client.xrange(stream) == entries
    assert runner.verify(view.run_id).ok
    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    assert runner.decide(request.approval_id, decision).run.status == "waiting"
    assert len(redis_client.xrange(stream)) > len(entries)
    assert runner.verify(view.run_id).ok


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=6000).filter(lambda t: not t.startswith("~")),
    dictionary=st.sampled_from([b"", b'{"action":"event","actor":{"id":"', bytes(range(256)) * 8]),
)
def test_a_deflated_value_inflates_whatever_its_size(text: str, dictionary: bytes) -> None:
    """``deflate.pack`` sizes the compressor's window to the dictionary and the value (a
    small one is cheaper to set up); ``unpack`` inflates any of them with the full window."""
    stored = deflate.pack(text, marker="~t:", dictionary=dictionary)
    assert deflate.unpack(stored, marker="~t:", dictionary=dictionary) == text
    assert deflate.unpack(stored.encode(), marker="~t:", dictionary=dictionary) == text.encode()


def test_a_holds_request_is_stored_deflated_and_an_older_plain_one_reads(
    redis_client: redis.Redis, key_prefix: str, make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """A hold's request is kept deflated in a key of its own, so the hold's record stays a
    listpack hash (a parked demo hold, record and request: 1,312 -> 944 bytes); holds
    stored before, with the request in the record's field (deflated, or plain JSON), are listed,
    read and decided like the new ones."""
    runner: Runner = make_runner()
    views = [runner.start("demo", demo_case, requester="sam", world=demo_world) for _ in range(3)]
    holds = [v.pending.request for v in views if v.pending is not None]
    assert len(holds) == 3
    keys = [
        f"{key_prefix}:{{{v.run_id}}}:approval:{h.approval_id}"
        for v, h in zip(views, holds, strict=True)
    ]
    stored = redis_client.get(keys[0] + ":request")
    assert stored is not None and stored.startswith(b"~r1:")
    assert len(stored) < len(holds[0].model_dump_json()) * 0.5
    assert not redis_client.hexists(keys[0], "request")
    assert redis_client.object("encoding", keys[0]) == b"listpack"
    used = sum(
        int(redis_client.memory_usage(k, samples=0) or 0) for k in (keys[0], keys[0] + ":request")
    )
    # how holds were stored before: in the record's field, deflated or plain JSON
    redis_client.hset(keys[1], "request", redis_client.get(keys[1] + ":request") or b"")
    assert redis_client.object("encoding", keys[1]) == b"hashtable"
    # Redis 7 (jemalloc): 944 vs 1,312 bytes; Valkey 9 (libc malloc): 832 vs 1,056
    assert used <= 0.85 * int(redis_client.memory_usage(keys[1], samples=0) or 0)
    redis_client.hset(keys[2], "request", holds[2].model_dump_json())
    redis_client.delete(keys[1] + ":request", keys[2] + ":request")
    assert {a.request.approval_id for a in runner.pending()} == {h.approval_id for h in holds}
    for hold in holds:
        view = runner.approvals.get(hold.approval_id)
        assert view is not None and view.request == hold
        decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
        assert runner.decide(hold.approval_id, decision).run.status == "waiting"


def test_a_completed_effect_is_stored_deflated_and_a_replay_gets_its_result(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """A completed ledger entry is stored deflated; reserving its key again (a replayed node)
    returns the recorded entry, so the effect does not run twice; a reserved one stays plain
    and counts its attempts; an older plain completed entry still reads."""
    from datetime import UTC, datetime

    from carebound.state.ledger import EffectLedger

    ledger = EffectLedger(redis_client, prefix=key_prefix)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = {"message_id": "msg-1", "channel": "fax", "sent_at": now.isoformat(),
              "communication": "Communication/cdf16ddc-141d-57c3-80b3-afb0f4b80b11"}  # fmt: skip
    assert ledger.reserve("run-l", "k1", "send_request_attempt", now) is None
    ledger.complete("run-l", "k1", "send_request_attempt", result, reserved_at=now, now=now)
    stored = redis_client.hget(f"{key_prefix}:{{run-l}}:ledger", "k1")
    assert stored is not None and stored.startswith(b"~l1:")
    replay = ledger.reserve("run-l", "k1", "send_request_attempt", now)
    assert replay is not None and replay.status == "done" and replay.result == result
    assert ledger.reserve("run-l", "k2", "open_document_request", now) is None
    again = ledger.reserve("run-l", "k2", "open_document_request", now)
    assert again is not None and again.status == "reserved" and again.attempts == 2
    plain = replay.model_copy(update={"key": "k3"}).model_dump_json()
    redis_client.hset(f"{key_prefix}:{{run-l}}:ledger", "k3", plain)
    entries = {e.key: e for e in ledger.entries("run-l")}
    assert sorted(entries) == ["k1", "k2", "k3"]
    assert entries["k1"].result == entries["k3"].result == result


def test_deflated_values_are_base64_and_base85_ones_written_before_still_read() -> None:
    """Deflated values are written in base64 (C speed: a page of twenty base85 holds took longer
    to decode than to read from Redis); values written before in base85 inflate the same."""
    import base64
    import zlib

    import pytest

    from carebound.state import deflate

    text = json.dumps({"packet": ["the same fact again"] * 40})
    packed = deflate.pack(text, marker="~z:")
    assert packed.startswith("~z:.")
    assert deflate.unpack(packed, marker="~z:") == text
    assert deflate.unpack(packed.encode(), marker="~z:") == text.encode()
    old = zlib.compressobj(6, zlib.DEFLATED, -15)
    legacy = "~z:" + base64.b85encode(old.compress(text.encode()) + old.flush()).decode()
    assert deflate.unpack(legacy, marker="~z:") == text
    assert deflate.unpack(legacy.encode(), marker="~z:") == text.encode()
    with pytest.raises(ValueError, match="does not inflate"):
        deflate.unpack(packed[:-8], marker="~z:")  # truncated


def test_a_run_record_reads_back_field_for_field() -> None:
    """The run hash's record fields give the same record back: datetimes to the microsecond,
    None and "" apart where a field may be either, counts as integers."""
    from datetime import UTC, datetime, timedelta

    from carebound.state.runs import RECORD_FIELDS, RunRecord, parse_record, record_fields

    when = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    full = RunRecord(
        run_id="r1", agent="demo", requester="", status="waiting", policy="default@1",
        created_at=when, updated_at=when + timedelta(microseconds=1), summary="sent",
        pending_approval="r1-2", wait_reason="office reply", wait_until=when + timedelta(days=2),
        failures=3, patient_ref="Patient/p1", trace="00-ab-cd-01", connectors="simulator",
    )  # fmt: skip
    bare = RunRecord(run_id="r2", agent="demo", requester="sam", status="paused",
                     policy="default@1", created_at=when, updated_at=when)  # fmt: skip
    for record in (full, bare):
        fields = record_fields(record)
        stored = [str(fields[name]).encode() for name in RECORD_FIELDS]  # as a server replies
        assert parse_record(stored) == record
    assert parse_record([None] * len(RECORD_FIELDS)) is None


def test_a_long_wait_reason_keeps_the_run_hash_a_listpack(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """Free text over 64 bytes (referral_intake's wait reason) is kept in pieces of 64 bytes at
    most, so the run hash stays a listpack; a shorter value later deletes the pieces."""
    from datetime import UTC, datetime

    from carebound.state.runs import RunRecord

    store = RunStore(redis_client, prefix=key_prefix)
    when = datetime(2026, 3, 4, tzinfo=UTC)
    reason = "waiting for the referring office to answer docreq-r04301ee59f57 (attempt 1 of 3) é"
    record = RunRecord(run_id="rlong", agent="referral_intake", requester="sam",
                       status="waiting", policy="default@1", created_at=when, updated_at=when,
                       wait_reason=reason, summary="s" * 250)  # fmt: skip
    store.create(record, case={"resourceType": "Bundle"}, policy_json="{}")
    key = f"{key_prefix}:{{rlong}}:run"
    assert redis_client.object("encoding", key) == b"listpack"
    assert store.get("rlong") == record
    shorter = record.model_copy(update={"wait_reason": "short", "summary": ""})
    store.update(shorter)
    assert store.get("rlong") == shorter
    assert not [f for f in redis_client.hkeys(key) if b":" in f]
