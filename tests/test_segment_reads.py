"""A simulated world's reads are remembered for one graph segment (issue 17), never longer, and
never past a write of the keys they read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fhir.resources.R4B.patient import Patient

from carebound.state.segment_reads import segment_reads
from carebound.tools.connectors import (
    ConnectorError,
    FhirValidationError,
    WorldSpec,
    validate_resource,
)
from carebound.tools.connectors.simulated import World
from tests.test_round_trips import Counted
from tools.reconcile._records import demographics_of


@pytest.fixture
def counted(redis_url: str) -> Iterator[Counted]:
    c = Counted(redis_url)
    yield c
    c.client.close()


def _patient(family: str = "Delgado") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
        "name": [{"family": family, "given": ["Ana"]}],
        "birthDate": "1980-02-03",
    }


def _world(client: redis.Redis, prefix: str, run_id: str = "r-seg") -> World:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _patient()}]}
    spec = WorldSpec.from_bundles(bundle, None)
    return World.seed(client, run_id, spec, prefix=prefix)


def _warm_world(client: redis.Redis, prefix: str) -> World:
    world = _world(client, prefix)
    with segment_reads():
        world.ehr.search("Patient")  # warms the connection and the script
    return world


def test_a_repeated_read_goes_to_redis_once_per_segment(counted: Counted, key_prefix: str) -> None:
    client = counted.client
    world = _warm_world(client, key_prefix)
    with segment_reads():
        before = counted.sends
        for _ in range(5):
            assert [p["id"] for p in world.ehr.search("Patient", family="Delgado")] == ["p1"]
            assert world.ehr.read("Patient", "p1")["id"] == "p1"
        assert counted.sends - before == 1  # the whole world, the first time
    before = counted.sends
    world.ehr.search("Patient", family="Delgado")
    world.ehr.search("Patient", family="Delgado")
    assert counted.sends - before == 2, "outside a segment every read goes to Redis"


def test_a_type_the_world_never_held_reads_empty_without_a_round_trip(
    counted: Counted, key_prefix: str
) -> None:
    """The registry taken whole names every key the world holds: a hash it did not name held
    nothing (a referral_intake start read its EHR's absent DocumentReference hash alone, one
    round trip more). One the segment writes itself is read again, and seen."""
    client = counted.client
    world = _warm_world(client, key_prefix)
    with segment_reads():
        before = counted.sends
        assert world.ehr.search("Patient") != []
        assert world.ehr.search("DocumentReference") == []
        assert world.ehr.search("DocumentReference") == []
        assert counted.sends - before == 1  # the whole world only
        world.ehr.create(
            {"resourceType": "DocumentReference", "id": "d1", "status": "current",
             "content": [{"attachment": {"contentType": "text/plain"}}]},
            idempotency_key="k-doc",
        )  # fmt: skip
        assert [d["id"] for d in world.ehr.search("DocumentReference")] == ["d1"]


def test_a_segment_sees_its_own_writes(redis_client: redis.Redis, key_prefix: str) -> None:
    world = _world(redis_client, key_prefix)
    with segment_reads():
        assert world.ehr.search("Patient", family="Delgado") != []
        assert world.ehr.read("Patient", "p1")["name"][0]["family"] == "Delgado"
        world.ehr.update_fields(
            "Patient", "p1", {"name.0.family": "Delgado-Ruiz"}, idempotency_key="k1"
        )
        assert world.ehr.read("Patient", "p1")["name"][0]["family"] == "Delgado-Ruiz"
        assert world.ehr.search("Patient", family="Delgado-R")[0]["id"] == "p1"
        world.ehr.create(
            {"resourceType": "Patient", "id": "p2", "name": [{"family": "Delgado"}]},
            idempotency_key="k2",
        )
        assert [p["id"] for p in world.ehr.search("Patient", family="Delgado")] == ["p1", "p2"]


def test_the_next_segment_sees_what_another_process_wrote(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    world = _world(redis_client, key_prefix)
    other_client = redis.Redis(connection_pool=redis.ConnectionPool(**_kwargs(redis_client)))
    elsewhere = World.attach(other_client, "r-seg", prefix=key_prefix)
    with segment_reads():
        assert [p["id"] for p in world.ehr.search("Patient")] == ["p1"]
    elsewhere.ehr.create({"resourceType": "Patient", "id": "p9"}, idempotency_key="k9")
    with segment_reads():
        assert [p["id"] for p in world.ehr.search("Patient")] == ["p1", "p9"]


def _kwargs(client: redis.Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


def _count_patient_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = Patient.model_validate

    def counting(cls: type[Patient], obj: Any, *args: Any, **kwargs: Any) -> Patient:
        calls.append(1)
        return original(obj, *args, **kwargs)

    monkeypatch.setattr(Patient, "model_validate", classmethod(counting))
    return calls


def test_an_equal_resource_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parses = _count_patient_parses(monkeypatch)
    resource = _patient(family="Validatedonce")
    first = validate_resource(resource, where="test")
    second = validate_resource(dict(resource), where="test")
    assert first == second == resource
    assert first is not second  # each caller gets its own copy
    assert len(parses) == 1
    with pytest.raises(FhirValidationError, match="birthDate"):
        validate_resource({**resource, "birthDate": "not a date"}, where="test")


def test_the_demographics_of_one_chart_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parses = _count_patient_parses(monkeypatch)
    chart = _patient(family="Parsedonce")
    first = demographics_of(chart)
    assert demographics_of(dict(chart)) == first
    assert first.family == "Parsedonce"
    assert len(parses) == 1
    assert demographics_of(_patient(family="Another")).family == "Another"
    assert len(parses) == 2


def test_an_effect_on_remembered_reads_is_one_round_trip(counted: Counted, key_prefix: str) -> None:
    world = _world(counted.client, key_prefix)
    with segment_reads():
        world.ehr.search("Patient")  # warms the connection and the scripts
    with segment_reads():
        assert world.ehr.read("Patient", "p1")["name"][0]["family"] == "Delgado"
        before = counted.sends
        world.ehr.update_fields("Patient", "p1", {"name.0.family": "Ruiz"}, idempotency_key="u1")
        # a key the world did not list yet, created under a guard that it is still absent
        world.ehr.create({"resourceType": "Patient", "id": "p2"}, idempotency_key="c1")
        assert counted.sends - before == 2  # one write each: no read before either
        assert world.ehr.read("Patient", "p1")["name"][0]["family"] == "Ruiz"
        assert counted.sends - before == 2, "the segment knows what it wrote"
        # a repeat is answered by the effect recorded under its key, in the same one trip
        world.ehr.update_fields("Patient", "p1", {"name.0.family": "Other"}, idempotency_key="u1")
        assert counted.sends - before == 3
    assert world.ehr.read("Patient", "p1")["name"][0]["family"] == "Ruiz"
    assert world.ehr.attempts() == 3


def test_an_effect_on_a_stale_read_is_decided_again_on_fresh_reads(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    world = _world(redis_client, key_prefix)
    other_client = redis.Redis(connection_pool=redis.ConnectionPool(**_kwargs(redis_client)))
    elsewhere = World.attach(other_client, "r-seg", prefix=key_prefix)
    with segment_reads():
        assert world.ehr.read("Patient", "p1")["birthDate"] == "1980-02-03"
        # another process changes the chart after this segment read it
        elsewhere.ehr.update_fields(
            "Patient", "p1", {"birthDate": "1981-01-01"}, idempotency_key="e"
        )
        world.ehr.update_fields("Patient", "p1", {"name.0.family": "Ruiz"}, idempotency_key="u1")
        elsewhere.ehr.create({"resourceType": "Patient", "id": "p3"}, idempotency_key="e3")
        with pytest.raises(ConnectorError, match="already exists"):
            world.ehr.create({"resourceType": "Patient", "id": "p3"}, idempotency_key="c3")
    stored = world.ehr.read("Patient", "p1")
    assert (stored["birthDate"], stored["name"][0]["family"]) == ("1981-01-01", "Ruiz")
    assert world.ehr.attempts() == 4  # each call counted once, retries on fresh reads not
    other_client.close()
