"""The EHR and the payer over FHIR R4 REST, against the real FHIR test server.

Every test writes to its own bases (``fhir_bases``) on the shared Medplum-router server; SMART
tests start a server of their own that requires tokens from its token endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.servicerequest import ServiceRequest

from carebound.state.breaker import BreakerStore
from carebound.tools.connectors import (
    ConnectorAuthError,
    ConnectorError,
    FhirValidationError,
    ResourceNotFoundError,
    SystemRefusedError,
    SystemUnavailableError,
    TaskPermissionError,
    VersionConflictError,
)
from carebound.tools.connectors.config import EhrConfig
from carebound.tools.connectors.fhir_rest import (
    EFFECT_SYSTEM,
    FhirRestClient,
    RestEHR,
    RestPayer,
    SmartBackendAuth,
    build_ehr,
    effect_search,
)
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirBases

MRN = "http://hospital.example.org/mrn"


def seed(base: str, resources: list[dict[str, Any]]) -> None:
    """Write ``resources`` (with their ids) to ``base`` in one transaction bundle."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
    response = httpx.post(base, json=bundle, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.text


def bundle_resources(rel: str) -> list[dict[str, Any]]:
    bundle = json.loads((SCENARIOS / rel).read_text())
    return [entry["resource"] for entry in bundle["entry"]]


def count(base: str, resource_type: str, query: str) -> int:
    """How many resources on the server match ``query`` (asked directly, not via carebound)."""
    response = httpx.get(f"{base}/{resource_type}?{query}&_total=accurate")
    assert response.status_code == 200, response.text
    return len(response.json().get("entry") or [])


@pytest.fixture
def ehr(fhir_bases: FhirBases) -> Iterator[RestEHR]:
    with FhirRestClient(fhir_bases.ehr, system="ehr") as client:
        yield RestEHR(client)


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": MRN, "value": "MRN-1"}],
    "name": [{"use": "official", "family": "Okafor", "given": ["Ada"]}],
    "birthDate": "1980-02-01",
    "gender": "female",
}


def communication(text: str) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": "Patient/pat-1"},
        "payload": [{"contentString": text}],
    }


# --- reads and searches ---------------------------------------------------------------------------


def test_reads_and_searches_return_validated_resources(fhir_bases: FhirBases, ehr: RestEHR) -> None:
    seed(
        fhir_bases.ehr,
        [
            PATIENT,
            {
                "resourceType": "Practitioner",
                "id": "prac-1",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
                "name": [{"family": "Watson"}],
            },
            {
                "resourceType": "ServiceRequest",
                "id": "sr-1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/pat-1"},
                "requester": {"reference": "Practitioner/prac-1"},
            },
            *[
                {
                    "resourceType": "DocumentReference",
                    "id": f"doc-{code}",
                    "status": "current",
                    "type": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "subject": {"reference": "Patient/pat-1"},
                    "date": date,
                    "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}],
                }
                for code, date in (
                    ("11506-3", "2026-02-20T00:00:00Z"),
                    ("11502-2", "2025-01-01T00:00:00Z"),
                )
            ],
        ],
    )
    found = ehr.search("Patient", identifier=f"{MRN}|MRN-1")
    assert [p["id"] for p in found] == ["pat-1"]
    assert found[0]["meta"]["versionId"]  # kept for a later If-Match
    notes = ehr.search(
        "DocumentReference",
        subject="Patient/pat-1",
        type="http://loinc.org|11506-3",
        date="ge2026-01-01",
    )
    assert [d["id"] for d in notes] == ["doc-11506-3"]
    assert len(ehr.search("DocumentReference", subject="Patient/pat-1")) == 2
    order = ehr.client.read_as(ServiceRequest, "sr-1")
    assert isinstance(order, ServiceRequest) and order.intent == "order"
    (practitioner,) = ehr.client.search_as(Practitioner, {"identifier": "1234567893"})
    assert practitioner.id == "prac-1"
    with pytest.raises(ResourceNotFoundError, match="Patient/nobody"):
        ehr.read("Patient", "nobody")


# --- writes: at most once on the server -----------------------------------------------------------


def test_a_repeated_create_makes_one_resource_on_the_server(
    fhir_bases: FhirBases, ehr: RestEHR
) -> None:
    first = ehr.create(communication("documents please"), idempotency_key="run-1:attempt:aa")
    again = ehr.create(communication("documents please"), idempotency_key="run-1:attempt:aa")

    assert again == first
    assert count(fhir_bases.ehr, "Communication", effect_search("run-1:attempt:aa")) == 1
    stored = ehr.read("Communication", first)
    assert {"system": EFFECT_SYSTEM, "value": "run-1:attempt:aa"} in stored["identifier"]
    other = ehr.create(communication("documents please"), idempotency_key="run-1:attempt:bb")
    assert other != first


class _AnswerLost(httpx.BaseTransport):
    """Forwards each request to the real server, then loses the first write's answer (as a
    timeout after the server acted)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method in ("POST", "PUT") and not self.lost:
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_create_retried_after_a_timeout_makes_one_resource(fhir_bases: FhirBases) -> None:
    transport = _AnswerLost()
    with FhirRestClient(fhir_bases.ehr, system="ehr", transport=transport) as client:
        ehr = RestEHR(client)
        with pytest.raises(SystemUnavailableError, match="ReadTimeout"):
            ehr.create(communication("first try"), idempotency_key="run-2:attempt:cc")
        assert count(fhir_bases.ehr, "Communication", effect_search("run-2:attempt:cc")) == 1

        created = ehr.create(communication("first try"), idempotency_key="run-2:attempt:cc")

    assert transport.lost == 1
    assert count(fhir_bases.ehr, "Communication", effect_search("run-2:attempt:cc")) == 1
    assert count(fhir_bases.ehr, "Communication", "_id=" + created) == 1


def test_a_resource_with_a_chosen_id_is_created_once_and_never_taken_over(
    fhir_bases: FhirBases, ehr: RestEHR
) -> None:
    task = {"resourceType": "Task", "id": "req-1", "status": "requested", "intent": "order"}
    assert ehr.create(task, idempotency_key="run-3:open:dd") == "req-1"
    assert ehr.create(task, idempotency_key="run-3:open:dd") == "req-1"
    history = httpx.get(f"{fhir_bases.ehr}/Task/req-1/_history").json()
    assert len(history["entry"]) == 1  # the repeat wrote nothing
    with pytest.raises(ConnectorError, match="Task/req-1 already exists"):
        ehr.create(task, idempotency_key="run-3:open:other")


def test_an_invalid_resource_is_refused_before_it_is_sent(
    fhir_bases: FhirBases, ehr: RestEHR
) -> None:
    with pytest.raises(FhirValidationError, match=r"Task\.status"):
        ehr.create(
            {"resourceType": "Task", "status": "waiting", "intent": "order"},
            idempotency_key="run-4:bad",
        )
    assert count(fhir_bases.ehr, "Task", "_count=10") == 0


# --- updates: If-Match, never an overwrite --------------------------------------------------------


def test_an_update_carries_if_match_and_a_concurrent_change_is_a_conflict(
    fhir_bases: FhirBases, ehr: RestEHR
) -> None:
    seed(fhir_bases.ehr, [PATIENT])
    read = ehr.read("Patient", "pat-1")
    # Someone else edits the chart after carebound read it.
    changed = {**read, "gender": "other"}
    put = httpx.put(f"{fhir_bases.ehr}/Patient/pat-1", json=changed)
    assert put.status_code == 200, put.text

    with pytest.raises(VersionConflictError) as conflict:
        ehr.update_fields(
            "Patient",
            "pat-1",
            {"name.0.given.0": "Adaeze"},
            idempotency_key="run-5:fix:ee",
            expected_version=read["meta"]["versionId"],
        )

    assert conflict.value.reference == "Patient/pat-1"
    assert conflict.value.current == put.json()["meta"]["versionId"]
    now = ehr.read("Patient", "pat-1")
    assert now["gender"] == "other" and now["name"][0]["given"] == ["Ada"]


def test_the_server_answers_412_to_a_stale_if_match(fhir_bases: FhirBases, ehr: RestEHR) -> None:
    seed(fhir_bases.ehr, [PATIENT])
    stale = ehr.read("Patient", "pat-1")
    httpx.put(f"{fhir_bases.ehr}/Patient/pat-1", json={**stale, "gender": "other"})

    with pytest.raises(VersionConflictError, match="changed since version"):
        ehr.client.update({**stale, "birthDate": "1980-01-02"}, if_match=stale["meta"]["versionId"])

    assert ehr.read("Patient", "pat-1")["birthDate"] == "1980-02-01"


def test_a_repeated_update_writes_once(fhir_bases: FhirBases, ehr: RestEHR) -> None:
    seed(fhir_bases.ehr, [PATIENT])
    first = ehr.update_fields(
        "Patient", "pat-1", {"name.0.given.0": "Adaeze"}, idempotency_key="run-6:fix:ff"
    )
    again = ehr.update_fields(
        "Patient", "pat-1", {"name.0.given.0": "Adaeze"}, idempotency_key="run-6:fix:ff"
    )

    assert again["meta"]["versionId"] == first["meta"]["versionId"]
    history = httpx.get(f"{fhir_bases.ehr}/Patient/pat-1/_history").json()
    assert len(history["entry"]) == 2  # the seed and one update


def test_task_status_changes_follow_the_permission_table(
    fhir_bases: FhirBases, ehr: RestEHR
) -> None:
    seed(
        fhir_bases.ehr,
        [{"resourceType": "Task", "id": "ref-1", "status": "requested", "intent": "order"}],
    )
    with pytest.raises(TaskPermissionError):
        ehr.set_task_status("ref-1", "accepted", by_role="requester", idempotency_key="k1")
    done = ehr.set_task_status("ref-1", "accepted", by_role="performer", idempotency_key="k2")
    assert done["status"] == "accepted"
    repeat = ehr.set_task_status("ref-1", "accepted", by_role="performer", idempotency_key="k2")
    assert repeat["meta"]["versionId"] == done["meta"]["versionId"]


# --- the payer ----------------------------------------------------------------------------------


def test_the_payer_answers_coverage_eligibility_and_prior_auth(fhir_bases: FhirBases) -> None:
    seed(fhir_bases.payer, bundle_resources("payer/pas_smith_other_birthdate.json"))
    seed(
        fhir_bases.payer,
        [
            {
                "resourceType": "CoverageEligibilityResponse",
                "id": "elig-smith",
                "status": "active",
                "purpose": ["benefits"],
                "patient": {"reference": "Patient/payer-smith"},
                "created": "2026-02-27",
                "request": {"identifier": {"value": "ER-1"}},
                "outcome": "complete",
                "insurer": {"reference": "Organization/org-maryland-capital"},
                "insurance": [
                    {
                        "coverage": {"reference": "Coverage/payer-cov-smith"},
                        "inforce": True,
                        "item": [
                            {
                                "category": {"coding": [{"code": "cardiology"}]},
                                "authorizationRequired": True,
                            }
                        ],
                    }
                ],
            },
            {
                "resourceType": "ClaimResponse",
                "id": "cr-smith",
                "status": "active",
                "type": {"coding": [{"code": "professional"}]},
                "use": "preauthorization",
                "patient": {"reference": "Patient/payer-smith"},
                "created": "2026-03-01",
                "insurer": {"reference": "Organization/org-maryland-capital"},
                "request": {"reference": "Claim/claim-smith"},
                "outcome": "complete",
                "preAuthRef": "AUTH-778",
            },
        ],
    )
    with FhirRestClient(fhir_bases.payer, system="payer") as client:
        payer = RestPayer(client)
        coverage = payer.coverage("12345678901")
        assert coverage is not None and coverage["id"] == "payer-cov-smith"
        beneficiary = payer.beneficiary(coverage)
        assert beneficiary is not None and beneficiary["birthDate"] == "1961-08-15"
        answer = payer.eligibility("12345678901", "cardiology")
        assert (answer.found, answer.in_force, answer.authorization_required) == (True, True, True)
        assert answer.response_id == "elig-smith"
        assert payer.coverage("99999999999") is None
        assert not payer.eligibility("99999999999").found
        assert payer.prior_auth("claim-smith") == "AUTH-778"
        assert payer.prior_auth("Claim/unknown") is None


# --- SMART Backend Services -------------------------------------------------------------------


def _keys(kind: str) -> tuple[bytes, dict[str, Any]]:
    """A private key (PEM) and its public JWK, for RS384 or ES384."""
    if kind == "RS384":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        key = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, {**jwk, "kid": f"key-{kind}", "alg": kind, "use": "sig"}


@pytest.fixture
def smart_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    from tests.fhir_server import running_server

    pems: dict[str, bytes] = {}
    jwks: list[dict[str, Any]] = []
    for alg in ("RS384", "ES384"):
        pems[alg], jwk = _keys(alg)
        jwks.append(jwk)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": jwks}))
    args = ("--require-auth", "--client-id", "carebound-test", "--jwks", str(jwks_file))
    with running_server(extra_args=args) as server:
        yield server.url, pems


def _smart(url: str, pem: bytes, alg: str, clock: Any = None) -> SmartBackendAuth:
    extra = {"clock": clock} if clock is not None else {}
    return SmartBackendAuth(
        client_id="carebound-test",
        private_key=pem,
        key_id=f"key-{alg}",
        scope="system/Patient.rs system/Task.cruds",
        token_url=f"{url}/auth/token",
        algorithm=alg,  # type: ignore[arg-type]
        **extra,
    )


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_smart_backend_services_gets_a_token_once_and_reuses_it(
    smart_server: tuple[str, dict[str, bytes]], alg: str
) -> None:
    url, pems = smart_server
    auth = _smart(url, pems[alg], alg)
    with FhirRestClient(f"{url}/ehr", system="ehr", auth=auth) as client:
        ehr = RestEHR(client)
        task_id = ehr.create(
            {"resourceType": "Task", "status": "requested", "intent": "order"},
            idempotency_key="smart:1",
        )
        assert ehr.read("Task", task_id)["status"] == "requested"
        assert ehr.search("Patient", identifier="nobody") == []
    assert auth.tokens_fetched == 1
    with (
        FhirRestClient(f"{url}/ehr", system="ehr") as anonymous,
        pytest.raises(SystemRefusedError, match="HTTP 401"),
    ):
        anonymous.read("Task", task_id)


def test_an_expired_token_is_renewed_before_use(
    smart_server: tuple[str, dict[str, bytes]],
) -> None:
    url, pems = smart_server
    now = [1_000_000.0]
    auth = _smart(url, pems["RS384"], "RS384", clock=lambda: now[0])
    with FhirRestClient(f"{url}/ehr", system="ehr", auth=auth) as client:
        client.search("Patient", {})
        now[0] += 200  # the token lives 300 s; renewed 60 s (the skew) before: still good
        client.search("Patient", {})
        assert auth.tokens_fetched == 1
        now[0] += 50  # 250 s: within the skew of its expiry
        client.search("Patient", {})
    assert auth.tokens_fetched == 2


def test_a_401_fetches_a_new_token_once(smart_server: tuple[str, dict[str, bytes]]) -> None:
    url, pems = smart_server
    auth = _smart(url, pems["ES384"], "ES384")
    with FhirRestClient(f"{url}/ehr", system="ehr", auth=auth) as client:
        client.search("Patient", {})
        reset = httpx.post(f"{url}/admin/reset")  # the server forgets every token it issued
        assert reset.status_code == 200, reset.text
        assert client.search("Patient", {}) == []
    assert auth.tokens_fetched == 2


def test_an_unregistered_key_is_refused_with_a_clear_error(
    smart_server: tuple[str, dict[str, bytes]],
) -> None:
    url, _ = smart_server
    stranger, _ = _keys("RS384")
    auth = _smart(url, stranger, "RS384")
    with (
        FhirRestClient(f"{url}/ehr", system="ehr", auth=auth) as client,
        pytest.raises(ConnectorAuthError, match="refused client 'carebound-test'") as refused,
    ):
        client.search("Patient", {})
    assert "kid 'key-RS384'" in str(refused.value.hint)


def test_a_key_that_cannot_sign_is_refused_at_configuration() -> None:
    rsa_pem, _ = _keys("RS384")
    with pytest.raises(ConnectorAuthError, match="cannot sign a ES384 assertion"):
        SmartBackendAuth(
            client_id="c",
            private_key=rsa_pem,
            key_id="k",
            scope="system/*.rs",
            token_url="http://127.0.0.1:1/token",
            algorithm="ES384",
        )


# --- built from the connectors file ---------------------------------------------------------------


def test_the_connectors_file_builds_a_smart_ehr_behind_the_breaker(
    smart_server: tuple[str, dict[str, bytes]],
    tmp_path: Path,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    url, pems = smart_server
    (tmp_path / "ehr.pem").write_bytes(pems["ES384"])
    config = EhrConfig.model_validate(
        {
            "base_url": f"{url}/ehr",
            "auth": {
                "kind": "smart",
                "token_url": f"{url}/auth/token",
                "client_id": "carebound-test",
                "private_key_file": str(tmp_path / "ehr.pem"),
                "alg": "ES384",
                "key_id": "key-ES384",
                "scopes": ["system/Patient.rs", "system/Task.cruds"],
            },
            "retry": {"attempts": 2, "backoff_s": 0.01, "cap_s": 0.05, "jitter_s": 0},
        }
    )
    ehr = build_ehr(config, breakers=BreakerStore(redis_client, prefix=key_prefix))
    with ehr.client:
        _create_update_conflict(ehr)
    assert BreakerStore(redis_client, prefix=key_prefix).state("ehr") == "closed"


def _create_update_conflict(ehr: RestEHR) -> None:
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    task_id = ehr.create(task, idempotency_key="built:1")
    assert ehr.create(task, idempotency_key="built:1") == task_id
    stale = ehr.read("Task", task_id)
    ehr.set_task_status(task_id, "accepted", by_role="performer", idempotency_key="built:2")
    # A refusal through the resilience layer is still told apart: 412 is a version conflict.
    with pytest.raises(VersionConflictError):
        ehr.client.update({**stale, "status": "cancelled"}, if_match=stale["meta"]["versionId"])
    assert ehr.read("Task", task_id)["status"] == "accepted"
