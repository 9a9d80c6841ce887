"""A scenario's world on the real FHIR test server: seeding, and the played referring office."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fhir.resources.R4B.bundle import Bundle

from carebound.scenario._load import load_scenario
from carebound.scenario._run import _world
from carebound.testing import Fault, FaultProxy, FaultSchedule
from carebound.tools.connectors import (
    ConnectorError,
    ConnectorsConfigError,
    ReplyScript,
    RunContext,
    WorldSpec,
)
from carebound.tools.connectors.config import connectors_config
from carebound.tools.connectors.fhir_world import (
    FhirBases,
    ReferringOffice,
    local_server_config,
    seed_configured_world,
    seed_world,
    world_bundles,
)
from carebound.tools.connectors.outreach_channels import build_outreach
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirBases as ServerBases

WORLD_SCENARIOS = sorted(
    path
    for path in SCENARIOS.glob("*.yaml")
    if (scenario := load_scenario(path)).world.ehr or scenario.world.payer
)


def world_of(path: Path) -> WorldSpec:
    return _world(load_scenario(path), path.parent, path)


def bases(server: ServerBases) -> FhirBases:
    return FhirBases.under(server.root)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def test_every_scenario_world_is_seeded_and_found(
    fhir_bases: ServerBases, http: httpx.Client
) -> None:
    assert len(WORLD_SCENARIOS) >= 10
    for path in WORLD_SCENARIOS:
        spec = world_of(path)
        seed_world(spec, bases(fhir_bases), http)
        for part, url in (("ehr", fhir_bases.ehr), ("payer", fhir_bases.payer)):
            for resource in getattr(spec, part):
                kind, rid = resource["resourceType"], resource["id"]
                read = http.get(f"{url}/{kind}/{rid}")
                assert read.status_code == 200, f"{path.name}: {kind}/{rid} not in {part}"
                assert read.json()["resourceType"] == kind


def test_seeding_twice_changes_nothing(fhir_bases: ServerBases, http: httpx.Client) -> None:
    spec = world_of(SCENARIOS / "reconcile_low_risk.yaml")

    def patients() -> list[dict[str, Any]]:
        bundle = http.get(f"{fhir_bases.ehr}/Patient").json()
        Bundle.model_validate(bundle)
        found = [{k: v for k, v in e["resource"].items() if k != "meta"} for e in bundle["entry"]]
        return sorted(found, key=lambda resource: str(resource["id"]))

    seed_world(spec, bases(fhir_bases), http)
    first = patients()
    seed_world(spec, bases(fhir_bases), http)
    assert patients() == first
    assert len(first) == len([r for r in spec.ehr if r["resourceType"] == "Patient"])


def test_urn_uuid_references_become_resource_references(
    fhir_bases: ServerBases, http: httpx.Client
) -> None:
    patient_uuid = "0b6c7c1e-2b7f-4e0a-9d55-3f1d2c4b5a69"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{patient_uuid}", "resource": {"resourceType": "Patient"}},
            {
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": f"urn:uuid:{patient_uuid}"},
                    "payor": [{"display": "Acme Health"}],
                }
            },
        ],
    }
    spec = WorldSpec.from_bundles(None, bundle)
    seed_world(spec, bases(fhir_bases), http)
    coverage = http.get(f"{fhir_bases.payer}/Coverage").json()["entry"][0]["resource"]
    assert coverage["beneficiary"]["reference"] == f"Patient/{patient_uuid}"
    assert http.get(f"{fhir_bases.payer}/Patient/{patient_uuid}").status_code == 200


def test_the_office_base_holds_the_referring_side(
    fhir_bases: ServerBases, http: httpx.Client
) -> None:
    spec = world_of(SCENARIOS / "chase_happy_path.yaml")
    bundles = world_bundles(spec)
    office_types = {e["resource"]["resourceType"] for e in bundles["office"]["entry"]}
    assert office_types <= {"Organization", "Practitioner", "PractitionerRole", "Endpoint"}
    assert office_types
    seed_world(spec, bases(fhir_bases), http)
    assert http.get(f"{fhir_bases.office}/Practitioner").json()["total"] >= 1


def test_an_invalid_world_resource_is_refused_naming_it() -> None:
    spec = WorldSpec(ehr=[{"resourceType": "Patient", "id": "p1", "birthDate": "last tuesday"}])
    with pytest.raises(
        ConnectorError, match=r"world\.ehr\[0\] \(Patient/p1\) is not valid FHIR R4"
    ):
        world_bundles(spec)


def test_an_unreachable_server_is_a_clear_error(http: httpx.Client) -> None:
    from tests.servers import free_port

    spec = WorldSpec(ehr=[{"resourceType": "Patient", "id": "p1"}])
    with pytest.raises(ConnectorError, match="cannot be reached"):
        seed_world(spec, FhirBases.under(f"http://127.0.0.1:{free_port()}"), http)


def test_a_server_refusal_quotes_the_outcome(
    fhir_server_url: str, fhir_bases: ServerBases, http: httpx.Client
) -> None:
    spec = WorldSpec(ehr=[{"resourceType": "Patient", "id": "p1"}])
    with FaultProxy(fhir_server_url, FaultSchedule(script=[Fault.ERROR_500])) as proxy:
        root = proxy.url + fhir_bases.root.removeprefix(fhir_server_url)
        with pytest.raises(ConnectorError, match=r"HTTP 500: injected fault: error_500"):
            seed_world(spec, FhirBases.under(root), http)


def test_a_code_the_server_refuses_is_named(fhir_bases: ServerBases, http: httpx.Client) -> None:
    # fhir.resources takes any Task.status; the server checks the required value set.
    spec = WorldSpec(
        ehr=[{"resourceType": "Task", "id": "t1", "status": "waiting", "intent": "order"}]
    )
    with pytest.raises(ConnectorError, match=r"HTTP 400: .*task-status \(Task.status\)"):
        seed_world(spec, bases(fhir_bases), http)


def test_fhir_server_option_means_three_bases() -> None:
    config = local_server_config("http://127.0.0.1:8090/")
    assert str(config.ehr.base_url) == "http://127.0.0.1:8090/ehr"
    assert config.payer is not None and str(config.payer.base_url) == "http://127.0.0.1:8090/payer"
    assert config.office is not None and config.office.cdex is not None
    assert str(config.office.cdex.base_url) == "http://127.0.0.1:8090/office"
    with pytest.raises(ConnectorError, match="not an http"):
        local_server_config("localhost:8090")


# --- the referring office on the real CDex channel ----------------------------------------

START = dt.datetime(2026, 2, 23, 9, 0, tzinfo=dt.UTC)


def reply(to: str, after: str, code: str, attempt: int | None = None) -> ReplyScript:
    return ReplyScript.model_validate(
        {
            "to": to,
            "after": after,
            "attempt": attempt,
            "documents": [{"code": code, "display": "Progress note", "text": f"note {code}"}],
        }
    )


def cdex_outreach(
    fhir_bases: ServerBases, redis_client: redis.Redis, key_prefix: str, run_id: str
) -> Any:
    config = local_server_config(fhir_bases.root)
    run = RunContext(run_id=run_id, agent="referral_chaser", prefix=key_prefix, client=redis_client)
    return build_outreach(config.office, run, clock=lambda: START)


def send(outreach: Any, to: str, request_id: str, key: str, now: dt.datetime) -> None:
    outreach.send(
        "portal", to, subject="Documents needed", body="Please send the progress note.",
        request_id=request_id, requested_codes=["11506-3"], idempotency_key=key, now=now,
    )  # fmt: skip


def test_the_office_completes_the_request_task_and_the_run_reads_the_reply(
    fhir_bases: ServerBases, http: httpx.Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    outreach = cdex_outreach(fhir_bases, redis_client, key_prefix, "run-office-1")
    office = ReferringOffice(fhir_bases.office, [reply("555-010-3000", "PT6H", "11506-3")], http)
    assert office.next_due() is None
    send(outreach, "555-010-3000", "Task/req-1", "effect-1", START)
    assert office.next_due() == START + dt.timedelta(hours=6)
    assert office.answer_due(START + dt.timedelta(hours=5)) == []
    assert outreach.due_replies(START + dt.timedelta(hours=5)) == []
    done = office.answer_due(START + dt.timedelta(hours=6))
    assert len(done) == 1
    assert office.next_due() is None
    replies = outreach.due_replies(START + dt.timedelta(hours=7))
    assert [r.request_id for r in replies] == ["Task/req-1"]
    assert [d.code for d in replies[0].documents] == ["11506-3"]
    # Received when the office answered on the run's clock (the Task's lastModified), not at
    # the server's wall-clock meta.lastUpdated, nor when the poll ran.
    assert replies[0].received_at == START + dt.timedelta(hours=6)
    assert outreach.due_replies(START + dt.timedelta(hours=8)) == []  # handed out once
    # Answering again writes nothing twice.
    assert office.answer_due(START + dt.timedelta(days=1)) == []
    documents = http.get(f"{fhir_bases.office}/DocumentReference").json()
    assert documents["total"] == 1


def test_the_office_answers_only_the_scripted_recipient_and_attempt(
    fhir_bases: ServerBases, http: httpx.Client, redis_client: redis.Redis, key_prefix: str
) -> None:
    outreach = cdex_outreach(fhir_bases, redis_client, key_prefix, "run-office-2")
    scripts = [reply("555-010-3000", "PT1H", "11506-3", attempt=2)]
    office = ReferringOffice(fhir_bases.office, scripts, http)
    send(outreach, "555-999-0000", "Task/req-other", "effect-a", START)
    send(outreach, "555-010-3000", "Task/req-2", "effect-b", START)
    assert office.next_due() is None  # first attempts: the script answers the second
    later = START + dt.timedelta(days=2)
    send(outreach, "555-010-3000", "Task/req-2", "effect-c", later)
    assert office.next_due() == later + dt.timedelta(hours=1)
    assert len(office.answer_due(later + dt.timedelta(hours=1))) == 1
    replies = outreach.due_replies(later + dt.timedelta(hours=1))
    assert [r.request_id for r in replies] == ["Task/req-2"]


def test_a_connectors_file_world_is_seeded_where_the_file_says(
    fhir_bases: ServerBases, redis_client: redis.Redis, key_prefix: str
) -> None:
    config = connectors_config(
        {
            "ehr": {"base_url": fhir_bases.ehr, "auth": {"kind": "bearer", "token": "t0ken"}},
            "office": {"cdex": {"base_url": fhir_bases.office}},
        }
    )
    run = RunContext(run_id="r-seed", agent="reconciler", prefix=key_prefix, client=redis_client)
    spec = world_of(SCENARIOS / "chase_happy_path.yaml")
    seed_configured_world(config, run, spec)
    practitioners = httpx.get(f"{fhir_bases.office}/Practitioner").json()
    assert practitioners["total"] >= 1
    patients = httpx.get(f"{fhir_bases.ehr}/Patient").json()
    assert patients["total"] == len([r for r in spec.ehr if r["resourceType"] == "Patient"])
    payer_world = WorldSpec(payer=[{"resourceType": "Patient", "id": "p1"}])
    with pytest.raises(ConnectorsConfigError, match=r"no \[payer\] section"):
        seed_configured_world(config, run, payer_world)


@pytest.mark.parametrize(
    "module",
    [
        "carebound.tools.connectors.fhir_world",
        "carebound.tools.connectors.fhir_rest",
        "carebound.tools.connectors.outreach_channels",
    ],
)
def test_each_connector_module_imports_first_in_a_fresh_process(module: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-800:]
