"""The audit trail: hash chain, tamper detection, concurrency, global index (real Redis/Valkey)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pydantic
import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

import carebound.audit
from carebound.audit import (
    GENESIS_HASH,
    Actor,
    AuditCorruptError,
    AuditDetailError,
    AuditEvent,
    AuditLog,
    _chain,
)
from carebound.state import audit_codec, deflate
from carebound.state.audit_codec import unpack_event
from carebound.state.keys import global_key, run_key

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind="agent", id="referral-intake", role="intake")
NURSE = Actor(kind="person", id="u-481", role="utilization-reviewer")


@pytest.fixture
def client(server_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(server_url)
    yield c
    c.close()


@pytest.fixture
def log(client: redis.Redis, key_prefix: str) -> AuditLog:
    return AuditLog(client, prefix=key_prefix)


def record_n(log: AuditLog, run_id: str, n: int) -> list[AuditEvent]:
    events = []
    for i in range(n):
        events.append(
            log.record(
                run_id,
                time=T0 + timedelta(seconds=i),
                actor=NURSE if i % 2 else AGENT,
                action="permission_check" if i % 2 else "read",
                category="coverage" if i % 2 else "demographics",
                outcome="success",
                patient_ref="Patient/123",
                detail={"tool": "fax.send", "step": i, "amount": 1.5, "dry_run": False},
            )
        )
    return events


def stream(prefix: str, run_id: str) -> str:
    return run_key(prefix, run_id, "audit")


def entries(
    client: redis.Redis, prefix: str, run_id: str
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream(prefix, run_id)))


def rebuild(client: redis.Redis, key: str, payloads: list[bytes | str]) -> None:
    """Replace the stream with entries holding ``payloads`` as their event JSON, in order."""
    client.delete(key)
    for payload in payloads:
        client.xadd(key, {"event": payload})


def payloads(client: redis.Redis, prefix: str, run_id: str) -> list[bytes | str]:
    return [unpack_event(fields[b"event"]) for _, fields in entries(client, prefix, run_id)]


def test_public_names_are_pinned() -> None:
    assert sorted(carebound.audit.__all__) == sorted(
        [
            "GENESIS_HASH",
            "MAX_DETAIL_CHARS",
            "Actor",
            "AnchorsFile",
            "ArchiveReport",
            "AuditAction",
            "AuditCheckpoint",
            "AuditConflictError",
            "AuditCorruptError",
            "AuditDetailError",
            "AuditEvent",
            "AuditExportError",
            "AuditIndexEntry",
            "AuditKeyError",
            "AuditKeyring",
            "AuditLog",
            "AuditOutcome",
            "AuditTrail",
            "ExportReport",
            "VerifyResult",
            "canonical_json",
            "export_checkpoints",
            "read_anchors",
            "archive_chains",
            "archive_lock",
            "verify_archive",
        ]
    )


def test_chain_of_events_verifies(client: redis.Redis, log: AuditLog, key_prefix: str) -> None:
    recorded = record_n(log, "run-1", 6)

    assert [e.seq for e in recorded] == [1, 2, 3, 4, 5, 6]
    assert recorded[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in recorded[1:]] == [e.hash for e in recorded[:-1]]
    assert log.events("run-1") == recorded
    result = log.verify("run-1")
    assert result.ok, result.problems
    assert (result.count, result.problems) == (6, [])
    head = client.hgetall(run_key(key_prefix, "run-1", "audit", "head"))
    assert head == {b"seq": b"6", b"hash": recorded[-1].hash.encode()}


def test_hash_is_sha256_of_canonical_json_without_hash_and_mac(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    event = log.record(
        "run-h",
        time=datetime(2025, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        actor=AGENT,
        action="effect",
        category="referral-documents",
        outcome="success",
        detail={"tool": "fax.send", "approval_id": "ap-7", "pages": 3},
    )
    (payload,) = payloads(client, key_prefix, "run-h")
    stored = json.loads(payload)
    assert payload == json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    assert stored["time"] == "2025-03-01T09:30:00.000000Z"
    assert event.time == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)
    body = {k: v for k, v in stored.items() if k not in ("hash", "mac")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert stored["hash"] == event.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert stored["key_id"] == event.key_id == log.keyring.signing_id
    message = b"carebound-audit-event:" + event.hash.encode()
    key = log.keyring.keys[log.keyring.signing_id]
    assert stored["mac"] == event.mac == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_empty_run_verifies_with_no_events(log: AuditLog) -> None:
    result = log.verify("nothing-here")
    assert (result.ok, result.count, result.problems) == (True, 0, [])
    assert log.events("nothing-here") == []


def _alter_field(items: list[dict[str, Any]]) -> None:
    items[2]["outcome"] = "denied"


def _alter_detail(items: list[dict[str, Any]]) -> None:
    items[2]["detail"]["tool"] = "ehr.write"


def _add_field(items: list[dict[str, Any]]) -> None:
    items[2]["note"] = "smuggled"


def _alter_hash(items: list[dict[str, Any]]) -> None:
    items[2]["hash"] = hashlib.sha256(b"forged").hexdigest()


def _rehash_altered(items: list[dict[str, Any]]) -> None:
    items[2]["category"] = "coverage-forged"
    body = {k: v for k, v in items[2].items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    items[2]["hash"] = hashlib.sha256(canonical.encode()).hexdigest()


def _swap(items: list[dict[str, Any]]) -> None:
    items[1], items[2] = items[2], items[1]


def _drop_middle(items: list[dict[str, Any]]) -> None:
    del items[2]


def _drop_last(items: list[dict[str, Any]]) -> None:
    del items[-1]


def _duplicate(items: list[dict[str, Any]]) -> None:
    items.insert(3, items[2])


TAMPERS: dict[str, tuple[Callable[[list[dict[str, Any]]], None], list[str]]] = {
    "field changed": (_alter_field, ["seq 3 (entry", "hash mismatch", "altered"]),
    "detail changed": (_alter_detail, ["seq 3 (entry", "hash mismatch"]),
    "field added": (_add_field, ["unparseable: note: Extra inputs", "seq 3: missing"]),
    "hash changed": (_alter_hash, ["seq 3 (entry", "hash mismatch", "seq 4: prev_hash mismatch"]),
    "altered and rehashed": (_rehash_altered, ["seq 4: prev_hash mismatch"]),
    "middle removed": (_drop_middle, ["seq 3: missing", "removed"]),
    "last removed": (
        _drop_last,
        ["seq 5: missing", "head records seq 5 but the last event is seq 4"],
    ),
    "reordered": (_swap, ["seq 2: stored after seq 3", "reordered"]),
    "duplicated": (_duplicate, ["seq 3: appears more than once"]),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampering_is_detected(
    tamper: str, client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    record_n(log, "run-t", 5)
    assert log.verify("run-t").ok
    change, expected = TAMPERS[tamper]
    items = [json.loads(p) for p in payloads(client, key_prefix, "run-t")]
    change(items)
    rebuild(
        client,
        stream(key_prefix, "run-t"),
        [json.dumps(i, sort_keys=True, separators=(",", ":")) for i in items],
    )

    result = log.verify("run-t")

    assert not result.ok
    assert result.count == len(items)
    text = "\n".join(result.problems)
    for fragment in expected:
        assert fragment in text, text


def test_xdel_of_middle_and_last_entries(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    record_n(log, "run-x", 5)
    ids = [entry_id for entry_id, _ in entries(client, key_prefix, "run-x")]

    client.xdel(stream(key_prefix, "run-x"), ids[1])
    result = log.verify("run-x")
    assert not result.ok
    assert result.problems == ["seq 2: missing: event(s) removed (seq gap)"]

    client.xdel(stream(key_prefix, "run-x"), ids[4])
    problems = log.verify("run-x").problems
    assert "seq 5: missing: event(s) removed (seq gap)" in problems
    assert "chain head records seq 5 but the last event is seq 4: events removed" in problems


def test_unparseable_entry_is_reported(client: redis.Redis, log: AuditLog, key_prefix: str) -> None:
    record_n(log, "run-u", 3)
    items = payloads(client, key_prefix, "run-u")
    items[1] = b"{not json"
    rebuild(client, stream(key_prefix, "run-u"), items)

    result = log.verify("run-u")
    assert not result.ok
    assert any("unparseable" in p for p in result.problems), result.problems
    assert any(p.startswith("seq 2: missing") for p in result.problems), result.problems
    with pytest.raises(AuditCorruptError, match="verify"):
        log.events("run-u")
    assert [e.seq for e in log.events("run-u", strict=False)] == [1, 3]


def test_events_from_another_run_are_foreign(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    record_n(log, "run-a", 2)
    record_n(log, "run-b", 2)
    rebuild(client, stream(key_prefix, "run-a"), payloads(client, key_prefix, "run-b"))
    head_a = run_key(key_prefix, "run-a", "audit", "head")
    head_b = run_key(key_prefix, "run-b", "audit", "head")
    client.copy(head_b, head_a, replace=True)

    problems = log.verify("run-a").problems
    assert any("belongs to run 'run-b'" in p for p in problems), problems


def test_missing_head_is_reported(client: redis.Redis, log: AuditLog, key_prefix: str) -> None:
    record_n(log, "run-m", 2)
    client.delete(run_key(key_prefix, "run-m", "audit", "head"))
    assert log.verify("run-m").problems == ["chain head is missing although the stream has events"]


def test_concurrent_recording_yields_gap_free_chain(
    server_url: str, client: redis.Redis, key_prefix: str
) -> None:
    threads_n, per_thread = 8, 25
    barrier = threading.Barrier(threads_n)
    results: list[list[AuditEvent]] = [[] for _ in range(threads_n)]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        own = redis.Redis.from_url(server_url)
        try:
            log = AuditLog(own, prefix=key_prefix)  # one log per "process": no shared head cache
            barrier.wait()
            for i in range(per_thread):
                results[n].append(
                    log.record(
                        "run-c",
                        time=T0 + timedelta(milliseconds=i),
                        actor=Actor(kind="agent", id=f"worker-{n}"),
                        action="execute",
                        category="coverage",
                        outcome="success",
                        detail={"i": i},
                    )
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    total = threads_n * per_thread
    log = AuditLog(client, prefix=key_prefix)
    result = log.verify("run-c")
    assert result.ok, result.problems
    assert result.count == total
    stored = log.events("run-c")
    assert [e.seq for e in stored] == list(range(1, total + 1))
    returned = sorted((e for r in results for e in r), key=lambda e: e.seq)
    assert returned == stored
    for n, own_events in enumerate(results):
        assert [e.detail["i"] for e in own_events] == list(range(per_thread))
        assert {e.actor.id for e in own_events} == {f"worker-{n}"}
    indexed = [e.event for e in log.recent(total + 10)]
    assert sorted((e.seq, e.hash) for e in indexed) == [(e.seq, e.hash) for e in stored]


def test_global_index_has_every_event(client: redis.Redis, log: AuditLog, key_prefix: str) -> None:
    a = record_n(log, "run-a", 3)
    b = record_n(log, "run-b", 2)
    c = record_n(log, "run-a", 1)
    everything = a + b + c

    latest = log.recent(100)
    assert [e.event for e in latest] == everything
    assert [e.event for e in log.recent(2)] == everything[-2:]

    page1 = log.recent(4, after="0-0")
    page2 = log.recent(4, after=page1[-1].entry_id)
    page3 = log.recent(4, after=page2[-1].entry_id)
    assert [e.event for e in page1 + page2] == everything
    assert page3 == []
    with pytest.raises(ValueError, match="limit"):
        log.recent(0)

    raw = cast(
        list[tuple[bytes, dict[bytes, bytes]]], client.xrange(global_key(key_prefix, "audit"))
    )
    # The index holds pointers, not a second copy of each event: run id and seq; the event
    # has the index entry's own id in the run's stream, so the pointer holds no id ('at').
    assert [sorted(f) for _, f in raw] == [[b"run_id", b"seq"]] * len(everything)
    assert [(f[b"run_id"], int(f[b"seq"])) for _, f in raw] == [
        (e.run_id.encode(), e.seq) for e in everything
    ]
    for entry_id, f in raw:
        stream = f"{key_prefix}:{{{f[b'run_id'].decode()}}}:audit"
        assert client.xrange(stream, min=entry_id, max=entry_id)
    assert log.verify("run-a").count == 4


def test_an_event_the_run_stream_cannot_take_at_the_index_id_is_pointed_to_by_at(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """When the run's stream is past the index entry's id (its last id set ahead, as after an
    index deleted and a clock gone back), the event takes the next id of its own stream and
    the pointer says where (``at``); the page resolves it like the others."""
    first = record_n(log, "run-x", 1)
    stream = f"{key_prefix}:{{run-x}}:audit"
    client.execute_command("XSETID", stream, "99999999999999-0")
    later = record_n(log, "run-x", 1)
    raw = cast(
        list[tuple[bytes, dict[bytes, bytes]]], client.xrange(global_key(key_prefix, "audit"))
    )
    assert [sorted(f) for _, f in raw] == [[b"run_id", b"seq"], [b"at", b"run_id", b"seq"]]
    assert raw[1][1][b"at"].startswith(b"99999999999999-")
    assert [e.event for e in log.recent(10)] == first + later
    assert log.verify("run-x").count == 2


def test_global_index_reads_old_entries_and_skips_purged_runs(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """An index entry written before pointers (the event inline) still reads; a pointer whose
    run's stream is gone (purged) is left out instead of failing the page."""
    kept = record_n(log, "run-kept", 1)
    gone = record_n(log, "run-gone", 1)
    old = record_n(log, "run-old", 1)
    index = global_key(key_prefix, "audit")
    last = client.xrevrange(index, count=1)[0][0]
    client.xdel(index, last)
    client.xadd(
        index,
        {"run_id": "run-old", "seq": 1, "hash": old[0].hash, "event": _chain.event_json(old[0])},
    )
    client.delete(f"{key_prefix}:{{run-gone}}:audit")
    assert gone
    assert [e.event for e in log.recent(10)] == kept + old


def test_two_writers_with_stale_heads_keep_one_chain(client: redis.Redis, key_prefix: str) -> None:
    first = AuditLog(client, prefix=key_prefix)
    second = AuditLog(client, prefix=key_prefix)
    for i in range(6):
        (first if i % 2 else second).record(
            "run-2w", time=T0, actor=AGENT, action="event", category="system", outcome="success"
        )
    result = first.verify("run-2w")
    assert result.ok, result.problems
    assert [e.seq for e in second.events("run-2w")] == [1, 2, 3, 4, 5, 6]


def test_detail_values_are_limited(client: redis.Redis, log: AuditLog, key_prefix: str) -> None:
    with pytest.raises(AuditDetailError, match="200") as info:
        log.record(
            "run-d",
            time=T0,
            actor=AGENT,
            action="read",
            category="referral-documents",
            outcome="success",
            detail={"document": "x" * 201},
        )
    assert isinstance(info.value, ValueError)
    assert "sha256" in str(info.value)
    with pytest.raises(AuditDetailError, match="finite"):
        log.record(
            "run-d",
            time=T0,
            actor=AGENT,
            action="read",
            category="coverage",
            outcome="success",
            detail={"amount": float("nan")},
        )
    assert client.exists(stream(key_prefix, "run-d")) == 0
    log.record(
        "run-d",
        time=T0,
        actor=AGENT,
        action="update",
        category="demographics",
        outcome="success",
        detail={"field": "address.line", "before": "12 main st", "after": "12 MAIN ST", "n": None},
    )
    assert log.verify("run-d").ok


@pytest.mark.parametrize(
    "ref", ["John Smith", "Patient/123 DOB 1970-01-01", "patient/123", "Patient/", ""]
)
def test_patient_ref_must_be_a_reference(log: AuditLog, ref: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="patient_ref"):
        log.record(
            "run-p",
            time=T0,
            actor=AGENT,
            action="view_phi",
            category="demographics",
            outcome="success",
            patient_ref=ref,
        )


@pytest.mark.parametrize(
    "ref",
    ["Patient/123", "Patient/abc-1.2/_history/3", "urn:uuid:0f8e0c7e-1d2b-4a5c-9e6f-123456789abc"],
)
def test_patient_ref_accepts_fhir_references(log: AuditLog, ref: str) -> None:
    event = log.record(
        "run-p", time=T0, actor=AGENT, action="view_phi", category="demographics",
        outcome="success", patient_ref=ref,
    )  # fmt: skip
    assert event.patient_ref == ref


def test_naive_time_is_refused(log: AuditLog) -> None:
    with pytest.raises(pydantic.ValidationError, match="timezone"):
        log.record(
            "run-n",
            time=datetime(2025, 1, 1, 12, 0),  # naive on purpose
            actor=AGENT,
            action="read",
            category="coverage",
            outcome="success",
        )


def test_events_are_frozen(log: AuditLog) -> None:
    event = record_n(log, "run-f", 1)[0]
    with pytest.raises(pydantic.ValidationError):
        event.outcome = "denied"


def test_decoded_client_reads_the_same_chain(
    server_url: str, log: AuditLog, key_prefix: str
) -> None:
    recorded = record_n(log, "run-s", 3)
    decoded = redis.Redis.from_url(server_url, decode_responses=True)
    try:
        other = AuditLog(decoded, prefix=key_prefix)
        assert other.events("run-s") == recorded
        assert other.verify("run-s").ok
        more = other.record(
            "run-s", time=T0, actor=AGENT, action="event", category="system", outcome="success"
        )
        assert more.seq == 4
        assert [e.event for e in other.recent(1)] == [more]
    finally:
        decoded.close()
    assert log.verify("run-s").ok


def test_commands_sent_before_an_append_go_once_even_on_a_stale_head(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """``before`` rides in the append's round trip; a retry on a moved head does not repeat
    it, and an invalid event still sends it (the ledger's result is never held back)."""
    record_n(AuditLog(client, prefix=key_prefix), "run-b", 2)  # another writer moved the head
    counter = f"{key_prefix}:before"

    def effect(detail: dict[str, Any]) -> AuditEvent | None:
        return log.record(
            "run-b",
            time=T0,
            actor=AGENT,
            action="effect",
            category="coverage",
            outcome="success",
            detail=detail,
            before=lambda pipe: pipe.incr(counter),
        )

    event = effect({"tool": "fax.send"})

    assert event is not None and event.seq == 3
    assert client.get(counter) == b"1"
    assert log.verify("run-b").ok
    with pytest.raises(AuditDetailError):
        effect({"note": "x" * 500})
    assert client.get(counter) == b"2"
    assert len(log.events("run-b")) == 3


def test_a_guarded_append_is_written_only_while_the_guard_holds(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    from carebound.state.pipeline import Guard, run

    record = f"{key_prefix}:{{run-g}}:approval:run-g-1"
    client.hset(record, "decide_id", "mine")

    def append(expected: str, once: str) -> bool:
        outcome: dict[str, Any] = {}

        def fill(pipe: redis.client.Pipeline) -> None:
            outcome["of"] = log.queue_record(
                pipe, "run-g", once=once, time=T0, actor=NURSE, action="decision",
                category="coverage", outcome="success",
                guard=Guard(record, {"decide_id": expected}),
            )  # fmt: skip

        (reply,) = run(client, fill)
        in_chain: bool = outcome["of"](reply)
        return in_chain

    assert append("theirs", "d-1") is False
    assert log.events("run-g") == []
    assert append("mine", "d-1") is True
    assert [e.seq for e in log.events("run-g")] == [1]
    assert log.verify("run-g").ok


def test_a_chained_event_is_what_event_json_and_verify_expect() -> None:
    keyring = carebound.audit.AuditKeyring.of("k9:a-key-for-this-test-only")
    draft = _chain.Draft.of(
        "run-j", time=T0, actor=NURSE, action="view_phi", category="coverage",
        outcome="success", patient_ref="Patient/1", detail={"approval_id": "a-1", "n": 3},
        key_id=keyring.signing_id,
    )  # fmt: skip

    for seq, prev in [(1, _chain.GENESIS_HASH), (7, "ab" * 32)]:
        event, stored = draft.chained(seq, prev, keyring)
        assert stored == _chain.event_json(event)
        body = json.loads(stored)
        assert body.pop("mac") == event.mac == keyring.sign(_chain.event_mac_message(event.hash))
        assert body.pop("hash") == event.hash == _chain.sha256_hex(body)
        assert AuditEvent.model_validate_json(stored) == event


CHECK_DETAIL: dict[str, Any] = {
    "tool": "reconcile_find_patient",
    "scope": "ehr:Patient.read",
    "reason": "granted by scope 'ehr:Patient.read'",
}


def record_checks(log: AuditLog, run_id: str, count: int) -> list[AuditEvent]:
    """``count`` permission checks of one run, as an agent records them."""
    return [
        log.record(
            run_id,
            time=T0,
            actor=AGENT,
            action="permission_check",
            category="referral-intake",
            outcome="success",
            patient_ref="Patient/pat-1",
            detail=CHECK_DETAIL,
        )
        for _ in range(count)
    ]


def test_events_are_stored_deflated_and_verify(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """A run's stream keeps each event deflated against the preset dictionary (well under half
    of its JSON for a typical event), reads back the exact canonical JSON that was hashed, and
    a stored value that no longer inflates is reported by verify, never raised."""
    events = record_checks(log, "run-z", 3)
    raw = [f[b"event"] for _, f in entries(client, key_prefix, "run-z")]
    plain = [_chain.event_json(e).encode() for e in events]
    assert all(r.startswith(audit_codec.ELIDED_MARKER) for r in raw)
    assert all(len(r) < len(p) / 2 for r, p in zip(raw, plain, strict=True))
    assert [unpack_event(r) for r in raw] == plain
    assert log.events("run-z") == events
    assert log.verify("run-z").ok
    for broken in (b"~z1:not deflate", raw[1][:-3], b"\x01not deflate"):
        rebuild(client, run_key(key_prefix, "run-z", "audit"), [raw[0], broken, raw[2]])
        problems = log.verify("run-z").problems
        assert problems and "entry" in " ".join(problems)


def test_events_are_stored_as_bytes_and_text_forms_still_read(
    server_url: str, client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """An event is kept as its raw deflate stream, a quarter shorter than the same stream in
    base64 (how events were stored before); events stored in that text form, in base85 before
    it, or as plain JSON still read and verify, mixed in one chain, by a decoding client too."""
    events = record_checks(log, "run-b", 4)
    raw = [f[b"event"] for _, f in entries(client, key_prefix, "run-b")]
    plain = [_chain.event_json(e) for e in events]
    as_text = [
        deflate.pack(p, marker=audit_codec.MARKER, dictionary=audit_codec._DICTIONARY)
        for p in plain
    ]
    whole = [audit_codec.pack_event(p) for p in plain]  # bytes, with the hash
    assert all(w.startswith(audit_codec.BINARY_MARKER) for w in whole)
    assert all(len(w) <= 0.8 * len(t) for w, t in zip(whole, as_text, strict=True))
    assert all(len(r) <= len(w) - 30 for r, w in zip(raw, whole, strict=True))
    body = as_text[1][len(audit_codec.MARKER) + 1 :]
    base85 = audit_codec.MARKER + base64.b85encode(base64.b64decode(body)).decode()
    rebuild(client, stream(key_prefix, "run-b"), [as_text[0], base85, whole[2], raw[3]])
    assert log.events("run-b") == events
    assert log.verify("run-b").ok
    decoded = redis.Redis.from_url(server_url, decode_responses=True)
    try:
        assert AuditLog(decoded, prefix=key_prefix).events("run-b") == events
    finally:
        decoded.close()


_DETAIL_TEXT = st.text(max_size=40)  # quotes, backslashes, control and non-ASCII characters


@settings(max_examples=200, deadline=None)
@given(
    detail=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(_DETAIL_TEXT, st.integers(), st.booleans(), st.none(),
                  st.floats(allow_nan=False, allow_infinity=False)),
        max_size=6,
    ),
    category=st.text(min_size=1, max_size=20),
    seq=st.integers(min_value=1, max_value=10**12),
)  # fmt: skip
def test_a_chained_event_is_hashed_and_stored_as_canonical_json(
    detail: dict[str, Any], category: str, seq: int
) -> None:
    """A chained event's stored text (one shared encoder writes canonical JSON) is exactly
    ``json.dumps(sort_keys=True)`` of the event, whose sha256 is the event's hash."""
    keyring = carebound.audit.AuditKeyring.of("k9:a-key-for-this-test-only")
    prev_hash = hashlib.sha256(category.encode()).hexdigest()
    try:
        draft = _chain.Draft.of(
            "run-c", time=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), actor=AGENT,
            action="event", category=category, outcome="success", patient_ref="Patient/1",
            detail=detail, key_id=keyring.signing_id,
        )  # fmt: skip
    except ValueError:
        return  # detail the log refuses (checked elsewhere)
    event, stored = draft.chained(seq, prev_hash, keyring)
    body = event.model_dump(mode="json", exclude={"hash", "mac"})
    body["time"] = "2026-01-02T03:04:05.678901Z"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert event.hash == hashlib.sha256(canonical.encode()).hexdigest()
    sealed = {**body, "hash": event.hash, "mac": event.mac}
    assert stored == json.dumps(sealed, sort_keys=True, separators=(",", ":"), allow_nan=False)


_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.text(max_size=10), _JSON_VALUE, max_size=8))
def test_the_fast_body_encoder_writes_canonical_json(body: dict[str, Any]) -> None:
    """``encode_body`` (the C encoder made once) writes exactly what ``canonical_json`` and
    ``json.dumps(sort_keys=True)`` write."""
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert _chain.encode_body(body) == _chain.canonical_json(body) == expected


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    )
)  # fmt: skip
def test_format_time_is_the_strftime_spelling(moment: datetime) -> None:
    """The audit time's spelling (hashed into every event) is the one it always was:
    ``%Y-%m-%dT%H:%M:%S.%fZ`` in UTC."""
    utc = moment.astimezone(UTC)
    assert _chain.format_time(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@settings(max_examples=200, deadline=None)
@given(
    detail=st.dictionaries(
        st.sampled_from(["outcome", "key_id", "hash", "mac", "seq", "a", ',"outcome":']),
        st.one_of(st.sampled_from([',"outcome":', ',"key_id":', '"}']), _DETAIL_TEXT, st.none()),
        max_size=5,
    ),
    keyed=st.booleans(),
)  # fmt: skip
def test_the_seal_goes_where_sorted_keys_put_it(detail: dict[str, Any], keyed: bool) -> None:
    """The stored text is built from the hashed text by inserting ``hash`` and ``mac``: it is
    exactly the canonical JSON of the sealed body, whatever keys and text the detail holds
    (the same key names nested, quotes and key-like strings), with or without a ``key_id``."""
    keyring = carebound.audit.AuditKeyring.of("k9:a-key-for-this-test-only")
    try:
        draft = _chain.Draft.of(
            "run-s", time=T0, actor=NURSE, action="decision", category="coverage",
            outcome="success", patient_ref="Patient/1", detail=detail,
            key_id=keyring.signing_id,
        )  # fmt: skip
    except ValueError:
        return
    body = {**draft.body, "seq": 3, "prev_hash": "ab" * 32}
    if not keyed:
        del body["key_id"]
    hashed = _chain.canonical_json(body)
    sealed = {**body, "hash": "cd" * 32, "mac": "ef" * 32}
    expected = json.dumps(sealed, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert _chain._with_seal(hashed, "cd" * 32, "ef" * 32, keyed=keyed) == expected
    event, stored = draft.chained(3, "ab" * 32, keyring)
    assert stored == _chain.event_json(event)


def test_once_keys_are_marked_in_the_head_and_older_once_hashes_still_count(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """A once key is marked in the run's head hash (``o:<key>``), which stays a small listpack:
    no once-keys hash per run any more. A run recorded before kept its once keys in that hash
    (key -> entry id): an append replayed under one of them is still not recorded again."""
    fields: dict[str, Any] = {"time": T0, "actor": AGENT, "action": "event",
                              "category": "system", "outcome": "success"}  # fmt: skip
    first = log.record("run-o", once="create", **fields)
    assert first is not None and log.record("run-o", once="create", **fields) is None
    assert [e.seq for e in log.events("run-o")] == [first.seq]
    head = run_key(key_prefix, "run-o", "audit", "head")
    assert client.hget(head, "o:create") == b""
    assert client.object("encoding", head) == b"listpack"
    assert not client.exists(run_key(key_prefix, "run-o", "audit", "once"))
    # a run recorded before: its once keys in the once-keys hash, not in the head
    log.record("run-p", **fields)
    client.hset(run_key(key_prefix, "run-p", "audit", "once"), "check:0", "1-0")
    assert log.record("run-p", once="check:0", **fields) is None
    assert log.record("run-p", once="check:1", **fields) is not None
    assert [e.seq for e in log.events("run-p")] == [1, 2]
    assert log.verify("run-p").ok


@settings(max_examples=100, deadline=None)
@given(detail=st.dictionaries(
    st.sampled_from(["hash", "mac", "key_id", "outcome", "x"]),
    st.one_of(st.text(max_size=30), st.integers(), st.none()),
    max_size=5,
))  # fmt: skip
def test_an_event_kept_without_its_hash_reads_back_exactly(detail: dict[str, Any]) -> None:
    """An event is kept without its ``hash`` (the reader computes it again), whatever look-alike
    keys its detail holds; a text whose hash is not the one given is kept whole."""
    keyring = carebound.audit.AuditKeyring.of("k9:a-key-for-this-test-only")
    draft = _chain.Draft.of("run-h", key_id=keyring.signing_id, time=T0, actor=AGENT,
                            action="event", category="system", outcome="success",
                            patient_ref="Patient/pat-1", detail=detail)  # fmt: skip
    sealed = draft.sealed(3, "a" * 64, keyring)
    packed = audit_codec.pack_event(sealed.stored, sealed.hash)
    assert isinstance(packed, bytes) and packed[:1] == audit_codec.ELIDED_MARKER
    assert unpack_event(packed) == sealed.stored.encode()
    other = audit_codec.pack_event(sealed.stored, "b" * 64)
    assert isinstance(other, bytes) and other[:1] == audit_codec.BINARY_MARKER
    assert unpack_event(other) == sealed.stored.encode()


def test_a_changed_event_kept_without_its_hash_does_not_verify(
    client: redis.Redis, log: AuditLog, key_prefix: str
) -> None:
    """The stored hash is gone, but a changed event still fails: its hash computed again no
    longer matches what its mac signed, nor the next event's prev_hash."""
    events = record_checks(log, "run-t", 3)
    raw = [f[b"event"] for _, f in entries(client, key_prefix, "run-t")]
    changed = cast(bytes, unpack_event(raw[1])).replace(b"ehr:Patient.read", b"ehr:Patient.edit")
    without_hash = re.sub(rb',"hash":"[0-9a-f]{64}"', b"", changed).decode()
    repacked = deflate.pack_raw(
        without_hash, marker=audit_codec.ELIDED_MARKER, dictionary=audit_codec._DICTIONARY
    )
    rebuild(client, stream(key_prefix, "run-t"), [raw[0], repacked, raw[2]])
    assert log.events("run-t")[1] != events[1]
    problems = log.verify("run-t").problems
    assert problems and "seq 2" in " ".join(problems)


@given(st.binary(min_size=1, max_size=200), st.binary(max_size=2048))
def test_a_signature_is_the_hmac_sha256_of_the_message(key: bytes, message: bytes) -> None:
    """``AuditKeyring.sign`` and ``check`` start from the key's pads hashed once (a start signs
    about twenty events); the MAC is the HMAC-SHA256 hex digest ``hmac.new`` gives, for keys
    shorter and longer than SHA-256's block."""
    from carebound.audit._keyring import AuditKeyring

    keyring = AuditKeyring("k1", {"k1": key})
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert keyring.sign(message) == expected
    assert keyring.check("k1", message, expected) is None
    assert keyring.check("k1", message + b"x", expected) is not None


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=4096))
def test_a_pack_digest_is_the_unpadded_base64url_sha256_of_its_text(text: str) -> None:
    """``pack_digest`` keeps the digests of the texts it saw lately; each is what hashing the
    text gives, for a str and for its bytes alike."""
    from carebound.state.runs import pack_digest

    data = text.encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert pack_digest(text) == pack_digest(text) == expected
    assert pack_digest(data) == expected
