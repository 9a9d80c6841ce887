"""The connectors and their Redis-backed simulations: idempotent effects, scripted replies,
FHIR validation, the referral Task permission table, seeding and reattaching a world."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis

import carebound.tools.connectors as connectors
import carebound.tools.connectors.simulated as simulated
from carebound.state.keys import run_key
from carebound.tools.connectors import (
    ConnectorError,
    ErpData,
    ErpInvoice,
    ErpInvoiceLine,
    ErpPoLine,
    ErpPurchaseOrder,
    ErpReceipt,
    ErpReceiptLine,
    FhirValidationError,
    InboundDocument,
    OutreachReceipt,
    ReplyScript,
    ResourceNotFoundError,
    ScriptedDocument,
    TaskPermissionError,
    TaskRole,
    TaskStatus,
    WorldSpec,
)
from carebound.tools.connectors.simulated import SimulatedEHR, SimulatedOutreach, World

T = TypeVar("T")
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
FAX = "+1-555-0100"
RUN = "run-1"


@pytest.fixture
def client(server_url: str, key_prefix: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(server_url)
    try:
        yield c
    finally:
        c.close()


def patient(pid: str = "p1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:mrn", "value": f"MRN-{pid}"}],
        "name": [{"family": "Lopez", "given": ["Margarita"]}],
        "birthDate": "1961-04-12",
        **extra,
    }


def task(tid: str = "t1", status: str = "requested") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": tid,
        "status": status,
        "intent": "order",
        "focus": {"reference": "ServiceRequest/sr1"},
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "for": {"reference": "Patient/p1"},
    }


def progress_note_reply(**overrides: Any) -> ReplyScript:
    fields: dict[str, Any] = {
        "to": FAX,
        "after": dt.timedelta(days=2),
        "documents": [
            ScriptedDocument(
                code="11506-3",
                display="Progress note",
                text="Seen for knee pain.",
                date=dt.date(2025, 2, 20),
            )
        ],
    }
    fields.update(overrides)
    return ReplyScript(**fields)


def seed(client: redis.Redis, prefix: str, **spec: Any) -> World:
    return World.seed(client, RUN, WorldSpec(**spec), prefix=prefix)


def send(
    world: World, key: str, *, request_id: str = "req-1", to: str = FAX, now: dt.datetime = T0
) -> OutreachReceipt:
    return world.outreach.send(
        "fax",
        to,
        subject="Records request",
        body="Please fax the latest progress note.",
        request_id=request_id,
        requested_codes=["11506-3"],
        idempotency_key=key,
        now=now,
    )


def in_threads(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` in ``n`` threads released together; return results (re-raise errors)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# --- public surface ---------------------------------------------------------------------------


def test_every_public_name_is_there() -> None:
    # The lists themselves are pinned in tests/test_package.py.
    for package in (connectors, simulated):
        for name in package.__all__:
            assert hasattr(package, name), (package.__name__, name)


# --- outreach: idempotent sends -----------------------------------------------------------------


def test_same_key_twice_sends_once(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix)
    first = send(world, "k1")
    second = send(world, "k1")
    assert second == first
    assert first.attempt == 1
    assert world.outreach.attempts() == 2
    effects = world.outreach.effects()
    assert [e.idempotency_key for e in effects] == ["k1"]
    assert effects[0].payload["to"] == FAX
    # Stored as JSON (never pickle).
    raw = client.hget(run_key(key_prefix, RUN, "world", "outreach", "effects"), "k1")
    assert raw is not None
    assert json.loads(raw)["action"] == "send"


def test_eight_threads_one_key_one_effect(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, replies=[progress_note_reply()])
    receipts = in_threads(8, lambda _: send(world, "same-key"))
    assert len({r.model_dump_json() for r in receipts}) == 1
    assert len(world.outreach.effects()) == 1
    assert world.outreach.attempts() == 8
    # The reply was scheduled once too.
    assert len(world.outreach.due_replies(T0 + dt.timedelta(days=30))) == 1


def test_distinct_keys_count_attempts_per_request(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix)
    assert [send(world, f"k{i}").attempt for i in range(3)] == [1, 2, 3]
    assert send(world, "other", request_id="req-2").attempt == 1
    assert len(world.outreach.effects()) == 4


def test_key_reused_for_another_action_is_refused(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, erp=ErpData(invoices=[invoice("INV-1")]))
    world.erp.hold_invoice("INV-1", "price over PO", idempotency_key="k")
    with pytest.raises(ConnectorError, match="already used for 'hold_invoice'"):
        world.erp.approve_invoice("INV-1", idempotency_key="k")


def test_send_needs_an_aware_clock_and_a_key(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix)
    with pytest.raises(ConnectorError, match="time zone"):
        send(world, "k", now=dt.datetime(2025, 3, 3, 9, 0))
    with pytest.raises(ConnectorError, match="idempotency_key"):
        send(world, " ")
    assert world.outreach.effects() == []


# --- outreach: scripted replies -----------------------------------------------------------------


def test_scripted_reply_arrives_when_due_and_once(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, replies=[progress_note_reply()])
    receipt = send(world, "k1")
    assert world.outreach.next_due() == T0 + dt.timedelta(days=2)
    assert world.outreach.due_replies(T0 + dt.timedelta(days=1)) == []
    replies = world.outreach.due_replies(T0 + dt.timedelta(days=2))
    assert len(replies) == 1
    reply = replies[0]
    assert reply.request_id == "req-1"
    assert reply.sender == FAX
    assert reply.channel == "fax"
    assert reply.received_at == T0 + dt.timedelta(days=2)
    assert reply.inbound_id.startswith(receipt.message_id)
    [doc] = reply.documents
    assert doc.code == "11506-3"
    resource = doc.resource
    assert resource["resourceType"] == "DocumentReference"
    assert resource["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11506-3",
        "display": "Progress note",
    }
    attachment = resource["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]).decode() == "Seen for knee pain."
    assert attachment["creation"] == "2025-02-20"
    connectors.validate_resource(resource, where="test")
    assert world.outreach.due_replies(T0 + dt.timedelta(days=9)) == []
    assert world.outreach.next_due() is None


def test_two_concurrent_pollers_get_each_reply_once(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, replies=[progress_note_reply(to="*")])
    for i in range(20):
        send(world, f"k{i}", request_id=f"req-{i}", to=f"+1-555-01{i:02d}")
    due = T0 + dt.timedelta(days=2)
    results = in_threads(2, lambda _: world.outreach.due_replies(due))
    ids = [r.inbound_id for batch in results for r in batch]
    assert len(ids) == 20
    assert len(set(ids)) == 20
    assert {r.request_id for batch in results for r in batch} == {f"req-{i}" for i in range(20)}


def test_reply_matches_recipient_and_attempt(client: redis.Redis, key_prefix: str) -> None:
    world = seed(
        client,
        key_prefix,
        replies=[
            progress_note_reply(attempt=2, after=dt.timedelta(hours=4), reply_channel="portal")
        ],
    )
    send(world, "a1")
    send(world, "a1")  # a repeat is not a second attempt
    send(world, "other-office", to="+1-555-0199", request_id="req-x")
    assert world.outreach.due_replies(T0 + dt.timedelta(days=30)) == []
    second = send(world, "a2", now=T0 + dt.timedelta(days=1))
    assert second.attempt == 2
    [reply] = world.outreach.due_replies(T0 + dt.timedelta(days=30))
    assert reply.received_at == T0 + dt.timedelta(days=1, hours=4)
    assert reply.channel == "portal"


def test_untyped_fax_document_has_no_type(client: redis.Redis, key_prefix: str) -> None:
    untyped = ScriptedDocument(text="LAB RESULTS: HbA1c 7.1%")
    world = seed(client, key_prefix, replies=[progress_note_reply(documents=[untyped])])
    send(world, "k")
    [reply] = world.outreach.due_replies(T0 + dt.timedelta(days=2))
    assert reply.documents[0].code is None
    assert "type" not in reply.documents[0].resource


def test_injected_inbound_is_delivered_once(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix)
    doc = InboundDocument.build(
        inbound_id="fax-777",
        request_id=None,
        channel="fax",
        sender="+1-555-0142",
        received_at=T0,
        documents=[ScriptedDocument(code="57133-1", display="Referral note", text="Referral")],
    )
    world.outreach.inject_inbound(doc)
    world.outreach.inject_inbound(doc)
    assert world.outreach.due_replies(T0 - dt.timedelta(seconds=1)) == []
    assert world.outreach.due_replies(T0) == [doc]
    assert world.outreach.due_replies(T0 + dt.timedelta(days=1)) == []


# --- EHR ----------------------------------------------------------------------------------------


def test_ehr_create_read_update_records_before_and_after(
    client: redis.Redis, key_prefix: str
) -> None:
    world = seed(client, key_prefix, ehr=[patient()])
    ehr = world.ehr
    comm = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "basedOn": [{"reference": "Task/t1"}],
    }
    cid = ehr.create(comm, idempotency_key="c1")
    assert ehr.create(comm, idempotency_key="c1") == cid
    assert ehr.read("Communication", cid)["status"] == "completed"
    assert [c["id"] for c in ehr.search("Communication", based_on="Task/t1")] == [cid]

    updated = ehr.update_fields(
        "Patient",
        "p1",
        {"name.0.family": "López", "telecom.0": {"system": "phone", "value": "555-0101"}},
        idempotency_key="u1",
    )
    assert updated["name"][0]["family"] == "López"
    assert ehr.read("Patient", "p1") == updated
    record = ehr.effects()[-1]
    assert record.action == "update_fields"
    assert record.payload["changes"] == [
        {"path": "name.0.family", "before": "Lopez", "after": "López"},
        {"path": "telecom.0", "before": None, "after": {"system": "phone", "value": "555-0101"}},
    ]
    # A later change does not alter what a repeat of the first call returns.
    ehr.update_fields("Patient", "p1", {"telecom": None}, idempotency_key="u2")
    assert "telecom" not in ehr.read("Patient", "p1")
    assert ehr.update_fields("Patient", "p1", {"gender": "male"}, idempotency_key="u1") == updated
    assert ehr.read("Patient", "p1").get("gender") is None
    assert [e.idempotency_key for e in ehr.effects()] == ["c1", "u1", "u2"]
    assert ehr.attempts() == 5


def test_ehr_rejects_malformed_patient_and_bad_status(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[patient()])
    with pytest.raises(FhirValidationError, match="birthDate") as info:
        world.ehr.create(patient("p2", birthDate="12/04/1961"), idempotency_key="bad")
    assert "12/04/1961" not in str(info.value)  # no PHI values in errors
    with pytest.raises(FhirValidationError, match="birthDate"):
        world.ehr.update_fields("Patient", "p1", {"birthDate": "soon"}, idempotency_key="bad2")
    with pytest.raises(FhirValidationError, match=r"Task\.status 'waiting'"):
        world.ehr.create(task("t9", status="waiting"), idempotency_key="bad3")
    assert world.ehr.effects() == []
    assert world.ehr.read("Patient", "p1")["birthDate"] == "1961-04-12"
    with pytest.raises(ResourceNotFoundError):
        world.ehr.read("Patient", "p2")


def test_ehr_create_refuses_an_existing_id(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[patient()])
    with pytest.raises(ConnectorError, match="already exists"):
        world.ehr.create(patient(), idempotency_key="dup")


def test_ehr_update_fields_refuses_bad_paths(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[patient()])
    for path in ("id", "resourceType", "name..family", "name.5.family", "birthDate.0"):
        with pytest.raises(ConnectorError):
            world.ehr.update_fields("Patient", "p1", {path: "x"}, idempotency_key=path)
    with pytest.raises(ResourceNotFoundError):
        world.ehr.update_fields("Patient", "nope", {"gender": "male"}, idempotency_key="n")


def test_concurrent_updates_of_one_resource_lose_nothing(
    client: redis.Redis, key_prefix: str
) -> None:
    world = seed(client, key_prefix, ehr=[patient()])
    changes: list[dict[str, object]] = [
        {"gender": "female"},
        {"active": True},
        {"name.0.text": "Margarita Lopez"},
        {"address.0.city": "Springfield"},
    ]
    in_threads(
        4, lambda i: world.ehr.update_fields("Patient", "p1", changes[i], idempotency_key=f"u{i}")
    )
    stored = world.ehr.read("Patient", "p1")
    assert stored["gender"] == "female"
    assert stored["active"] is True
    assert stored["name"][0]["text"] == "Margarita Lopez"
    assert stored["address"][0]["city"] == "Springfield"
    assert len(world.ehr.effects()) == 4


def test_concurrent_repeats_of_state_changing_writes(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[task("t1")])
    ids = in_threads(8, lambda _: world.ehr.create(patient("p9"), idempotency_key="c"))
    assert set(ids) == {"p9"}
    tasks = in_threads(
        8,
        lambda _: world.ehr.set_task_status(
            "t1", "completed", by_role="performer", idempotency_key="done"
        ),
    )
    assert all(t["status"] == "completed" for t in tasks)
    assert [e.idempotency_key for e in world.ehr.effects()] == ["c", "done"]
    assert world.ehr.attempts() == 16


def test_ehr_search(client: redis.Redis, key_prefix: str) -> None:
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}],
    }
    other = patient("p2", name=[{"family": "Lopez", "given": ["Rita"]}], birthDate="1990-01-01")
    world = seed(client, key_prefix, ehr=[patient(), other, task(), doc])
    ehr = world.ehr
    assert [p["id"] for p in ehr.search("Patient", identifier="urn:mrn|MRN-p1")] == ["p1"]
    assert [p["id"] for p in ehr.search("Patient", identifier="MRN-p2")] == ["p2"]
    assert [p["id"] for p in ehr.search("Patient", identifier="urn:other|MRN-p2")] == []
    assert [p["id"] for p in ehr.search("Patient", family="lop")] == ["p1", "p2"]
    found = ehr.search("Patient", family="LOPEZ", birthdate="1990-01-01")
    assert [p["id"] for p in found] == ["p2"]
    assert [t["id"] for t in ehr.search("Task", focus="ServiceRequest/sr1")] == ["t1"]
    assert [t["id"] for t in ehr.search("Task", **{"based-on": "ServiceRequest/sr1"})] == ["t1"]
    assert ehr.search("Task", based_on="ServiceRequest/other") == []
    assert [d["id"] for d in ehr.search("DocumentReference", subject="Patient/p1")] == ["d1"]
    with pytest.raises(ConnectorError, match="not supported"):
        ehr.search("Patient", email="x@example.org")


# --- Task permission table (SDOH Clinical Care referral Task) -----------------------------------

# Written from DOMAIN.md independently of the implementation's table.
REQUESTER_SETS = {"draft", "requested", "entered-in-error", "cancelled"}
PERFORMER_SETS = {
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "cancelled",
}
ALL_STATUSES = sorted(REQUESTER_SETS | PERFORMER_SETS | {"received", "ready"})


@pytest.mark.parametrize("role", ["requester", "performer"])
def test_task_permission_table(redis_url: str, key_prefix: str, role: TaskRole) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        tasks = [task(f"t-{status}") for status in ALL_STATUSES]
        world = seed(client, key_prefix, ehr=tasks)
        allowed = REQUESTER_SETS if role == "requester" else PERFORMER_SETS
        for status in ALL_STATUSES:

            def call(s: str = status) -> dict[str, Any]:
                return world.ehr.set_task_status(
                    f"t-{s}",
                    cast(TaskStatus, s),
                    by_role=role,
                    reason="because",
                    idempotency_key=f"{role}-{s}",
                )

            if status in allowed:
                assert call()["status"] == status
            else:
                with pytest.raises(TaskPermissionError):
                    call()
                assert world.ehr.read("Task", f"t-{status}")["status"] == "requested"
    finally:
        client.close()


def test_task_lifecycle(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[task("t1"), task("t2")])
    ehr = world.ehr
    with pytest.raises(TaskPermissionError, match="requester may not"):
        ehr.set_task_status("t1", "completed", by_role="requester", idempotency_key="x")
    done = ehr.set_task_status("t1", "completed", by_role="performer", idempotency_key="c")
    assert done["status"] == "completed"
    assert ehr.set_task_status("t1", "completed", by_role="performer", idempotency_key="c") == done
    with pytest.raises(TaskPermissionError, match="already completed"):
        ehr.set_task_status("t1", "in-progress", by_role="performer", idempotency_key="again")

    with pytest.raises(ConnectorError, match="needs a reason"):
        ehr.set_task_status("t2", "failed", by_role="performer", idempotency_key="f")
    cancelled = ehr.set_task_status(
        "t2", "cancelled", by_role="requester", reason="patient moved", idempotency_key="cx"
    )
    assert cancelled["statusReason"] == {"text": "patient moved"}
    record = ehr.effects()[-1]
    assert record.payload["changes"] == [
        {"path": "status", "before": "requested", "after": "cancelled"}
    ]
    assert record.payload["by_role"] == "requester"
    assert [e.idempotency_key for e in ehr.effects()] == ["c", "cx"]


# --- world: seed and attach ---------------------------------------------------------------------


def test_attach_from_a_new_client_sees_the_seeded_world(
    server_url: str, client: redis.Redis, key_prefix: str
) -> None:
    seed(client, key_prefix, ehr=[patient()], replies=[progress_note_reply()])
    send(World.attach(client, RUN, prefix=key_prefix), "k1")
    other = redis.Redis.from_url(server_url, decode_responses=True)
    try:
        world = World.attach(other, RUN, prefix=key_prefix)
        assert world.ehr.read("Patient", "p1")["birthDate"] == "1961-04-12"
        assert [e.idempotency_key for e in world.outreach.effects()] == ["k1"]
        assert send(world, "k1").attempt == 1  # still de-duplicated across clients
        assert len(world.outreach.due_replies(T0 + dt.timedelta(days=2))) == 1
    finally:
        other.close()
    with pytest.raises(ConnectorError, match="no simulated world"):
        World.attach(client, "never-seeded", prefix=key_prefix)


def test_seeding_twice_is_idempotent(client: redis.Redis, key_prefix: str) -> None:
    spec = WorldSpec(ehr=[patient(), task()], replies=[progress_note_reply()])
    world = World.seed(client, RUN, spec, prefix=key_prefix)
    world.ehr.set_task_status("t1", "accepted", by_role="performer", idempotency_key="a")
    keys_before = sorted(client.scan_iter(match=f"{key_prefix}:*"))
    World.seed(client, RUN, WorldSpec.model_validate(spec.model_dump()), prefix=key_prefix)
    assert sorted(client.scan_iter(match=f"{key_prefix}:*")) == keys_before
    assert world.ehr.read("Task", "t1")["status"] == "accepted"  # not reset by the second seed
    assert len(world.outreach.scripts()) == 1
    with pytest.raises(ConnectorError, match="different spec"):
        World.seed(client, RUN, WorldSpec(ehr=[patient()]), prefix=key_prefix)


def test_seeding_validates_before_writing(client: redis.Redis, key_prefix: str) -> None:
    with pytest.raises(FhirValidationError, match="EHR seed resource #1"):
        seed(client, key_prefix, ehr=[patient(), patient("p2", birthDate="x")])
    with pytest.raises(ConnectorError, match="has no id"):
        seed(client, key_prefix, ehr=[{"resourceType": "Patient"}])
    with pytest.raises(ConnectorError, match="two different resources"):
        seed(client, key_prefix, ehr=[patient(), patient(gender="male")])
    assert list(client.scan_iter(match=f"{key_prefix}:*")) == []


def test_spec_from_bundles(client: redis.Redis, key_prefix: str) -> None:
    ehr_bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7e1b1e-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient", "birthDate": "1961-04-12"},
            },
            {"resource": task()},
        ],
    }
    spec = WorldSpec.from_bundles(ehr_bundle, None, [progress_note_reply()])
    world = World.seed(client, RUN, spec, prefix=key_prefix)
    assert world.ehr.read("Patient", "0b7e1b1e-0000-4000-8000-000000000001")
    assert world.ehr.read("Task", "t1")["status"] == "requested"
    with pytest.raises(ConnectorError, match="expected a FHIR Bundle"):
        WorldSpec.from_bundles(patient(), None)


# --- payer --------------------------------------------------------------------------------------


def payer_bundle() -> dict[str, Any]:
    resources = [
        {"resourceType": "Patient", "id": "pp1", "birthDate": "1961-04-12"},
        {
            "resourceType": "Coverage",
            "id": "cov1",
            "status": "active",
            "subscriberId": "W123456789",
            "beneficiary": {"reference": "Patient/pp1"},
            "payor": [{"reference": "Organization/acme-health"}],
        },
        {
            "resourceType": "CoverageEligibilityResponse",
            "id": "cer1",
            "status": "active",
            "purpose": ["benefits"],
            "patient": {"reference": "Patient/pp1"},
            "created": "2025-03-01",
            "request": {"reference": "CoverageEligibilityRequest/r1"},
            "outcome": "complete",
            "insurer": {"reference": "Organization/acme-health"},
            "insurance": [
                {
                    "coverage": {"reference": "Coverage/cov1"},
                    "inforce": True,
                    "item": [
                        {
                            "category": {"coding": [{"code": "98", "display": "Office visit"}]},
                            "authorizationRequired": False,
                        },
                        {
                            "productOrService": {"coding": [{"code": "73721"}]},
                            "name": "MRI lower extremity",
                            "authorizationRequired": True,
                        },
                    ],
                }
            ],
        },
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def test_payer_eligibility_from_seeded_response(client: redis.Redis, key_prefix: str) -> None:
    world = World.seed(client, RUN, WorldSpec.from_bundles(None, payer_bundle()), prefix=key_prefix)
    payer = world.payer
    assert payer.coverage("W123456789") is not None
    result = payer.eligibility("W123456789")
    assert result.found and result.in_force
    assert result.authorization_required is True
    assert result.coverage_id == "cov1"
    assert result.response_id == "cer1"
    assert result.payer == "Organization/acme-health"
    assert payer.eligibility("W123456789", service_code="73721").authorization_required is True
    assert payer.eligibility("W123456789", service_code="98").authorization_required is False
    missing = payer.eligibility("W-000")
    assert not missing.found and not missing.authorization_required
    assert payer.coverage("W-000") is None


def test_payer_prior_auth_from_public_pas_fixtures(
    public_fixtures: Path, client: redis.Redis, key_prefix: str
) -> None:
    folder = public_fixtures / "davinci-pas-test-kit"
    request = json.loads((folder / "conformant_pas_bundle_v110.json").read_text())
    approved = json.loads((folder / "valid_pa_response_bundle.json").read_text())
    denied = json.loads((folder / "valid_pa_response_bundle_denial.json").read_text())

    spec = WorldSpec.from_bundles(None, request)
    spec = spec.model_copy(
        update={"payer": spec.payer + WorldSpec.from_bundles(None, approved).payer}
    )
    world = World.seed(client, RUN, spec, prefix=key_prefix)
    coverage = world.payer.coverage("12345678901")  # the subscriber's MIN on the Patient
    assert coverage is not None and coverage["id"] == "InsuranceExample"
    assert world.payer.prior_auth("111099") == "AUTH0001"
    assert world.payer.prior_auth("999999") is None

    denial_world = World.seed(
        client, "run-denied", WorldSpec.from_bundles(None, denied), prefix=key_prefix
    )
    assert denial_world.payer.prior_auth("111099") is None

    broken = json.loads((folder / "pa_response_bundle_missing_elements.json").read_text())
    with pytest.raises(FhirValidationError, match="created"):
        World.seed(client, "run-broken", WorldSpec.from_bundles(None, broken), prefix=key_prefix)


# --- ERP ----------------------------------------------------------------------------------------


def invoice(number: str) -> ErpInvoice:
    return ErpInvoice(
        invoice_number=number,
        vendor="Medline",
        po_number="PO-1",
        invoice_date=dt.date(2025, 3, 1),
        lines=[
            ErpInvoiceLine(
                line=1, po_line=1, sku="GLV-100", quantity=Decimal(10), unit_price=Decimal("12.50")
            )
        ],
    )


def erp_data() -> ErpData:
    return ErpData(
        purchase_orders=[
            ErpPurchaseOrder(
                po_number="PO-1",
                vendor="Medline",
                lines=[
                    ErpPoLine(
                        line=1, sku="GLV-100", quantity=Decimal(10), unit_price=Decimal("12.50")
                    )
                ],
            )
        ],
        receipts=[
            ErpReceipt(
                receipt_number="GR-1",
                po_number="PO-1",
                received_on=dt.date(2025, 2, 27),
                lines=[ErpReceiptLine(po_line=1, sku="GLV-100", quantity=Decimal(10))],
            )
        ],
        invoices=[invoice("INV-1"), invoice("INV-2")],
    )


def test_erp_approve_is_idempotent(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, erp=erp_data())
    erp = world.erp
    po = erp.purchase_order("PO-1")
    assert po is not None and po.lines[0].unit_price == Decimal("12.50")
    assert [r.receipt_number for r in erp.receipts("PO-1")] == ["GR-1"]
    assert [i.invoice_number for i in erp.invoices(po_number="PO-1")] == ["INV-1", "INV-2"]

    first = erp.approve_invoice("INV-1", idempotency_key="ap1")
    assert first.status == "approved"
    assert erp.approve_invoice("INV-1", idempotency_key="ap1") == first
    assert erp.attempts() == 2
    assert len(erp.effects()) == 1
    with pytest.raises(ConnectorError, match="already approved"):
        erp.approve_invoice("INV-1", idempotency_key="ap2")

    held = erp.hold_invoice("INV-2", "no receipt for line 2", idempotency_key="h1")
    assert (held.status, held.hold_reason) == ("on_hold", "no receipt for line 2")
    released = erp.approve_invoice("INV-2", idempotency_key="ap3")
    assert (released.status, released.hold_reason) == ("approved", None)
    assert erp.effects()[1].payload["before"] == {"status": "received", "hold_reason": None}
    with pytest.raises(ResourceNotFoundError):
        erp.approve_invoice("INV-404", idempotency_key="ap4")
    assert erp.invoice("INV-404") is None


def test_erp_concurrent_approvals_one_effect(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, erp=erp_data())
    results = in_threads(8, lambda _: world.erp.approve_invoice("INV-1", idempotency_key="ap"))
    assert all(r == results[0] for r in results)
    assert len(world.erp.effects()) == 1
    assert world.erp.attempts() == 8


def test_world_totals(client: redis.Redis, key_prefix: str) -> None:
    world = seed(client, key_prefix, ehr=[task()], erp=erp_data())
    send(world, "s")
    send(world, "s")
    world.ehr.set_task_status("t1", "accepted", by_role="performer", idempotency_key="a")
    world.erp.approve_invoice("INV-1", idempotency_key="ap")
    assert [(e.system, e.action) for e in world.effects()] == [
        ("ehr", "set_task_status"),
        ("outreach", "send"),
        ("erp", "approve_invoice"),
    ]
    assert world.attempts() == 4
    assert world.payer.effects() == [] and world.payer.attempts() == 0


def test_connectors_work_without_a_world(client: redis.Redis, key_prefix: str) -> None:
    ehr = SimulatedEHR(client, "bare", prefix=key_prefix)
    tid = ehr.create(task("t1"), idempotency_key="k")
    assert ehr.read("Task", tid)["id"] == "t1"
    outreach = SimulatedOutreach(client, "bare", prefix=key_prefix)
    assert outreach.scripts() == []
    assert (
        outreach.send(
            "email",
            "office@example.org",
            subject="s",
            body="b",
            request_id="r",
            requested_codes=[],
            idempotency_key="e",
            now=T0,
        ).channel
        == "email"
    )
