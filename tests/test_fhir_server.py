"""The real FHIR test server (testing/fhir-server) does what the connectors' tests rely on.

Each behaviour here is one a real FHIR R4 server has and a connector test leans on: conditional
create makes a retried write harmless, ``If-Match`` refuses a stale update with 412, search by
identifier finds a write again, transaction bundles are all-or-nothing, bases are independent,
persisted state survives a crash, and SMART Backend Services assertions are checked like an
EHR's token endpoint checks them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.task import Task

from tests.fhir_server import FhirBases, FhirServerProcess, fhir_json, running_server

FHIR_JSON = {"Content-Type": "application/fhir+json"}
EFFECT_SYSTEM = "urn:carebound:effect"


def patient(key: str, family: str = "Okafor") -> dict[str, Any]:
    """A Patient carrying an effect-key identifier, built with the real FHIR model."""
    model = Patient.model_validate(
        {
            "resourceType": "Patient",
            "identifier": [{"system": EFFECT_SYSTEM, "value": key}],
            "name": [{"family": family, "given": ["Ada"]}],
            "birthDate": "1980-02-03",
        }
    )
    return dict(model.model_dump(mode="json", exclude_none=True))


def create(base: str, resource: dict[str, Any], if_none_exist: str | None = None) -> httpx.Response:
    headers = dict(FHIR_JSON)
    if if_none_exist is not None:
        headers["If-None-Exist"] = if_none_exist
    return httpx.post(f"{base}/{resource['resourceType']}", json=resource, headers=headers)


def search(base: str, query: str) -> Bundle:
    response = httpx.get(f"{base}/{query}")
    assert response.status_code == 200, response.text
    return Bundle.model_validate(fhir_json(response))


def test_metadata_is_a_capability_statement(fhir_bases: FhirBases) -> None:
    response = httpx.get(f"{fhir_bases.ehr}/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(fhir_json(response))
    assert statement.fhirVersion == "4.0.1"
    types = {resource.type for resource in statement.rest[0].resource or []}
    assert {"Patient", "Task", "DocumentReference", "Coverage", "ClaimResponse"} <= types


def test_create_then_read_with_etag_and_location(fhir_bases: FhirBases) -> None:
    created = create(fhir_bases.ehr, patient("k-create"))
    assert created.status_code == 201, created.text
    body = Patient.model_validate(fhir_json(created))
    assert body.id and body.meta and body.meta.versionId
    assert created.headers["ETag"] == f'W/"{body.meta.versionId}"'
    assert created.headers["Location"].startswith(f"{fhir_bases.ehr}/Patient/{body.id}/_history/")
    read = httpx.get(f"{fhir_bases.ehr}/Patient/{body.id}")
    assert read.status_code == 200
    assert Patient.model_validate(fhir_json(read)).name[0].family == "Okafor"  # type: ignore[index]


def test_conditional_create_twice_makes_one_resource(fhir_bases: FhirBases) -> None:
    condition = f"identifier={EFFECT_SYSTEM}|k-once"
    first = create(fhir_bases.ehr, patient("k-once"), if_none_exist=condition)
    second = create(fhir_bases.ehr, patient("k-once"), if_none_exist=condition)
    assert (first.status_code, second.status_code) == (201, 200)
    assert fhir_json(first)["id"] == fhir_json(second)["id"]
    found = search(fhir_bases.ehr, f"Patient?identifier={EFFECT_SYSTEM}|k-once")
    assert found.total == 1


def test_if_match_on_a_stale_version_is_refused_with_412(fhir_bases: FhirBases) -> None:
    created = fhir_json(create(fhir_bases.ehr, patient("k-match")))
    seen_version = created["meta"]["versionId"]  # type: ignore[index]
    url = f"{fhir_bases.ehr}/Patient/{created['id']}"
    changed = dict(created, name=[{"family": "Changed"}])
    first = httpx.put(url, json=changed, headers={**FHIR_JSON, "If-Match": f'W/"{seen_version}"'})
    assert first.status_code == 200, first.text
    stale = dict(created, name=[{"family": "Overwrite"}])
    second = httpx.put(url, json=stale, headers={**FHIR_JSON, "If-Match": f'W/"{seen_version}"'})
    assert second.status_code == 412, second.text
    now = Patient.model_validate(fhir_json(httpx.get(url)))
    assert now.name[0].family == "Changed"  # type: ignore[index]


def test_search_by_identifier_and_bases_are_independent(fhir_bases: FhirBases) -> None:
    create(fhir_bases.ehr, patient("k-ehr-only"))
    create(fhir_bases.ehr, patient("k-other", family="Other"))
    in_ehr = search(fhir_bases.ehr, f"Patient?identifier={EFFECT_SYSTEM}|k-ehr-only")
    assert in_ehr.total == 1
    assert in_ehr.entry[0].fullUrl.startswith(f"{fhir_bases.ehr}/Patient/")  # type: ignore[index,union-attr]
    assert search(fhir_bases.payer, f"Patient?identifier={EFFECT_SYSTEM}|k-ehr-only").total == 0
    assert search(fhir_bases.office, "Patient").total == 0


def transaction(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(
        Bundle.model_validate(
            {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        ).model_dump(mode="json", exclude_none=True)
    )


def test_transaction_resolves_references_and_is_all_or_nothing(fhir_bases: FhirBases) -> None:
    patient_ref = f"urn:uuid:{uuid.uuid4()}"
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    ok = httpx.post(
        fhir_bases.ehr,
        json=transaction(
            [
                {
                    "fullUrl": patient_ref,
                    "resource": patient("k-tx"),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {**task, "for": {"reference": patient_ref}},
                    "request": {"method": "POST", "url": "Task"},
                },
            ]
        ),
        headers=FHIR_JSON,
    )
    assert ok.status_code == 200, ok.text
    tasks = search(fhir_bases.ehr, "Task")
    assert tasks.total == 1
    stored = Task.model_validate(tasks.entry[0].resource.model_dump())  # type: ignore[index,union-attr]
    assert stored.for_fhir.reference.startswith("Patient/")  # type: ignore[union-attr]

    broken = httpx.post(
        fhir_bases.ehr,
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": patient("k-rolled-back"),
                    "request": {"method": "POST", "url": "Patient"},
                },
                # Task.intent is required: the whole bundle must be refused.
                {
                    "resource": {"resourceType": "Task", "status": "requested"},
                    "request": {"method": "POST", "url": "Task"},
                },
            ],
        },
        headers=FHIR_JSON,
    )
    assert broken.status_code == 400
    assert "Task.intent" in broken.text
    assert search(fhir_bases.ehr, f"Patient?identifier={EFFECT_SYSTEM}|k-rolled-back").total == 0


def test_an_invalid_resource_is_refused_naming_the_property(fhir_bases: FhirBases) -> None:
    response = create(fhir_bases.ehr, {"resourceType": "Patient", "favouriteColour": "teal"})
    assert response.status_code == 400
    assert "Patient.favouriteColour" in response.text


@pytest.mark.parametrize(
    ("resource", "where"),
    [
        ({"resourceType": "Task", "status": "waiting", "intent": "order"}, "Task.status"),
        ({"resourceType": "Patient", "name": [{"use": "alias"}]}, "Patient.name[0].use"),
    ],
)
def test_a_code_outside_its_required_value_set_is_refused(
    fhir_bases: FhirBases, resource: dict[str, Any], where: str
) -> None:
    # fhir.resources does not check required bindings; the server does, like a real one.
    response = create(fhir_bases.ehr, resource)
    assert response.status_code == 400
    issue = fhir_json(response)["issue"][0]  # type: ignore[index]
    assert issue["code"] == "code-invalid"
    assert issue["expression"] == [where]


def test_reset_clears_one_namespace(fhir_server_url: str, fhir_bases: FhirBases) -> None:
    create(fhir_bases.ehr, patient("k-reset"))
    namespace = fhir_bases.root.rsplit("/", 1)[1]
    reset = httpx.post(f"{fhir_server_url}/admin/reset", params={"namespace": namespace})
    assert reset.status_code == 200
    assert search(fhir_bases.ehr, "Patient").total == 0


def test_a_killed_server_keeps_what_it_acknowledged(fhir_process: FhirServerProcess) -> None:
    base = f"{fhir_process.url}/ehr"
    created = fhir_json(create(base, patient("k-durable")))
    fhir_process.restart()
    read = httpx.get(f"{base}/Patient/{created['id']}")
    assert read.status_code == 200
    assert fhir_json(read)["meta"] == created["meta"]
    again = create(
        base, patient("k-durable"), if_none_exist=f"identifier={EFFECT_SYSTEM}|k-durable"
    )
    assert again.status_code == 200


def test_without_persistence_a_restart_starts_empty() -> None:
    with running_server() as server:
        create(f"{server.url}/ehr", patient("k-gone"))
        server.restart()
        assert search(f"{server.url}/ehr", "Patient").total == 0


# --- SMART Backend Services ---------------------------------------------------------------

CLIENT_ID = "carebound-test-client"


def public_jwk(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, alg: str
) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return dict(jwk, kid=kid, alg=alg, use="sig")


class SmartServer:
    """A FHIR test server that requires bearer tokens, with one registered client (two keys)."""

    def __init__(self, tmp: Path) -> None:
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP384R1())
        jwks = {
            "keys": [
                public_jwk(self.rsa_key, "rsa-1", "RS384"),
                public_jwk(self.ec_key, "ec-1", "ES384"),
            ]
        }
        jwks_file = tmp / "jwks.json"
        jwks_file.write_text(json.dumps(jwks), encoding="utf-8")
        self.args = ("--require-auth", "--client-id", CLIENT_ID, "--jwks", str(jwks_file))
        self.args += ("--token-lifetime", "2")
        self.process = FhirServerProcess()  # replaced by the started one

    @property
    def token_url(self) -> str:
        return f"{self.process.url}/auth/token"

    def assertion(
        self,
        *,
        alg: str = "RS384",
        key: Any = None,
        exp_in: int = 120,
        jti: str | None = None,
        aud: str | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": aud or self.token_url,
            "exp": now + exp_in,
            "jti": jti or uuid.uuid4().hex,
        }
        signing_key = key or (self.rsa_key if alg == "RS384" else self.ec_key)
        headers = {"kid": kid or ("rsa-1" if alg == "RS384" else "ec-1")}
        return jwt.encode(claims, signing_key, algorithm=alg, headers=headers)

    def ask(self, assertion: str) -> httpx.Response:
        return httpx.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "scope": "system/*.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )


@pytest.fixture(scope="module")
def smart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartServer]:
    directory = tmp_path_factory.mktemp("smart")
    server = SmartServer(directory)
    with running_server(extra_args=server.args) as process:
        server.process = process
        yield server


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_valid_assertion_gets_a_token_that_opens_the_bases(smart: SmartServer, alg: str) -> None:
    base = f"{smart.process.url}/ehr"
    refused = httpx.get(f"{base}/Patient")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    answer = smart.ask(smart.assertion(alg=alg))
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 2
    assert token["scope"] == "system/*.rs"
    opened = httpx.get(
        f"{base}/Patient", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert opened.status_code == 200
    assert httpx.get(f"{base}/metadata").status_code == 200  # discovery needs no token


def test_an_access_token_stops_working_when_it_expires(smart: SmartServer) -> None:
    token = smart.ask(smart.assertion()).json()["access_token"]
    time.sleep(2.2)
    late = httpx.get(
        f"{smart.process.url}/ehr/Patient", headers={"Authorization": f"Bearer {token}"}
    )
    assert late.status_code == 401
    assert "expired" in late.text


def test_an_expired_assertion_is_refused(smart: SmartServer) -> None:
    answer = smart.ask(smart.assertion(exp_in=-30))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client"
    assert "exp" in answer.json()["error_description"]


def test_an_assertion_living_past_five_minutes_is_refused(smart: SmartServer) -> None:
    answer = smart.ask(smart.assertion(exp_in=3600))
    assert answer.status_code == 400
    assert "five minutes" in answer.json()["error_description"]


def test_an_assertion_signed_with_another_key_is_refused(smart: SmartServer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = smart.ask(smart.assertion(key=stranger))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client"
    assert "signature" in answer.json()["error_description"]


def test_a_replayed_jti_is_refused(smart: SmartServer) -> None:
    jti = uuid.uuid4().hex
    assert smart.ask(smart.assertion(jti=jti)).status_code == 200
    replay = smart.ask(smart.assertion(jti=jti))
    assert replay.status_code == 400
    assert "jti" in replay.json()["error_description"]


def test_an_assertion_for_another_audience_is_refused(smart: SmartServer) -> None:
    answer = smart.ask(smart.assertion(aud="https://elsewhere.example/token"))
    assert answer.status_code == 400
    assert "aud" in answer.json()["error_description"]


def test_an_unsigned_assertion_is_refused(smart: SmartServer) -> None:
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": smart.token_url,
        "exp": int(time.time()) + 60,
        "jti": "x",
    }
    answer = smart.ask(jwt.encode(claims, None, algorithm="none"))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client"
