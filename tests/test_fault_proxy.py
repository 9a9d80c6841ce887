"""carebound.testing.FaultProxy before the real FHIR test server: each fault as a client sees it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from carebound.testing import Fault, FaultProxy, FaultSchedule
from tests.fhir_server import FhirBases, FhirServerProcess

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def task(key: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "identifier": [{"system": "urn:carebound:effect", "value": key}],
    }


def count_tasks(base: str, key: str) -> int:
    bundle = httpx.get(f"{base}/Task", params={"identifier": f"urn:carebound:effect|{key}"}).json()
    return int(bundle["total"])


@pytest.fixture
def proxy(fhir_server_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(fhir_server_url) as running:
        yield running


def through(proxy: FaultProxy, bases: FhirBases) -> str:
    """The test's EHR base as reached through the proxy."""
    return proxy.url + bases.ehr.removeprefix(bases.root.rsplit("/", 1)[0])


def test_a_passing_request_reaches_the_server(proxy: FaultProxy, fhir_bases: FhirBases) -> None:
    base = through(proxy, fhir_bases)
    created = httpx.post(f"{base}/Task", json=task("k-pass"), headers=FHIR_JSON)
    assert created.status_code == 201
    assert created.headers["ETag"].startswith('W/"')
    assert count_tasks(fhir_bases.ehr, "k-pass") == 1
    assert [(entry.method, entry.fault) for entry in proxy.log] == [("POST", Fault.PASS)]


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [(Fault.ERROR_500, 500, None), (Fault.ERROR_503, 503, "3"), (Fault.TOO_MANY, 429, "3")],
)
def test_error_answers_never_reach_the_server(
    proxy: FaultProxy, fhir_bases: FhirBases, fault: Fault, status: int, retry_after: str | None
) -> None:
    proxy.set_schedule(FaultSchedule(script=[fault], retry_after_s=3))
    base = through(proxy, fhir_bases)
    answer = httpx.post(f"{base}/Task", json=task("k-err"), headers=FHIR_JSON)
    assert answer.status_code == status
    assert answer.headers.get("Retry-After") == retry_after
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert count_tasks(fhir_bases.ehr, "k-err") == 0


def test_a_dropped_request_gets_no_answer_and_reaches_nothing(
    proxy: FaultProxy, fhir_bases: FhirBases
) -> None:
    proxy.set_schedule(FaultSchedule(script=[Fault.DROP]))
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{through(proxy, fhir_bases)}/Task", json=task("k-drop"), headers=FHIR_JSON)
    assert count_tasks(fhir_bases.ehr, "k-drop") == 0


def test_a_reset_loses_the_reply_of_a_write_the_server_did(
    proxy: FaultProxy, fhir_bases: FhirBases
) -> None:
    proxy.set_schedule(FaultSchedule(script=[Fault.RESET]))
    base = through(proxy, fhir_bases)
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{base}/Task", json=task("k-reset"), headers=FHIR_JSON)
    assert count_tasks(fhir_bases.ehr, "k-reset") == 1
    # The retry a careful client makes is a conditional create: still one Task.
    retried = httpx.post(
        f"{base}/Task",
        json=task("k-reset"),
        headers={**FHIR_JSON, "If-None-Exist": "identifier=urn:carebound:effect|k-reset"},
    )
    assert retried.status_code == 200
    assert count_tasks(fhir_bases.ehr, "k-reset") == 1


def test_a_delayed_answer_outlasts_a_short_client_timeout(
    proxy: FaultProxy, fhir_bases: FhirBases
) -> None:
    proxy.set_schedule(FaultSchedule(script=[Fault.DELAY, Fault.DELAY], delay_s=1.0))
    base = through(proxy, fhir_bases)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{base}/Task", timeout=0.2)
    assert httpx.get(f"{base}/Task", timeout=10).status_code == 200


def test_the_schedule_is_seeded() -> None:
    rates = {"drop": 0.1, "error_503": 0.2, "too_many": 0.1, "reset": 0.1}
    one = [FaultSchedule(seed=11, rates=rates).fault_for(n) for n in range(400)]
    same = [FaultSchedule(seed=11, rates=rates).fault_for(n) for n in range(400)]
    other = [FaultSchedule(seed=12, rates=rates).fault_for(n) for n in range(400)]
    assert one == same
    assert one != other
    share = one.count(Fault.ERROR_503) / len(one)
    assert 0.12 < share < 0.28
    assert one.count(Fault.PASS) / len(one) > 0.35


def test_a_script_comes_before_the_rates() -> None:
    schedule = FaultSchedule(seed=1, rates={"error_500": 1.0}, script=["pass", "reset"])
    assert [schedule.fault_for(n) for n in range(3)] == [Fault.PASS, Fault.RESET, Fault.ERROR_500]


@pytest.mark.parametrize(
    ("rates", "problem"),
    [
        ({"teleport": 0.1}, "teleport"),
        ({"drop": 0.7, "reset": 0.6}, "add up"),
        ({"drop": 2}, "0..1"),
    ],
)
def test_a_bad_schedule_is_refused(rates: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FaultSchedule(rates=rates)


def test_faults_by_chance_leave_no_duplicate_behind_a_retrying_client(
    proxy: FaultProxy, fhir_bases: FhirBases
) -> None:
    proxy.set_schedule(
        FaultSchedule(
            seed=5, rates={"drop": 0.15, "error_503": 0.15, "reset": 0.2}, retry_after_s=0
        )
    )
    base = through(proxy, fhir_bases)
    for number in range(15):
        key = f"k-chance-{number}"
        for _attempt in range(30):
            try:
                answer = httpx.post(
                    f"{base}/Task",
                    json=task(key),
                    headers={
                        **FHIR_JSON,
                        "If-None-Exist": f"identifier=urn:carebound:effect|{key}",
                    },
                )
            except httpx.TransportError:
                continue
            if answer.status_code in (200, 201):
                break
        else:
            pytest.fail(f"{key} never got through")
    faults = {entry.fault for entry in proxy.log}
    assert {Fault.DROP, Fault.ERROR_503, Fault.RESET} <= faults
    for number in range(15):
        assert count_tasks(fhir_bases.ehr, f"k-chance-{number}") == 1


def test_a_killed_server_comes_back_behind_the_proxy(fhir_process: FhirServerProcess) -> None:
    with FaultProxy(fhir_process.url) as proxy:
        base = f"{proxy.url}/ehr"
        created = httpx.post(f"{base}/Task", json=task("k-kill"), headers=FHIR_JSON).json()
        fhir_process.kill()
        down = httpx.get(f"{base}/Task/{created['id']}")
        assert down.status_code == 502
        assert "upstream unreachable" in json.dumps(down.json())
        fhir_process.start()
        assert httpx.get(f"{base}/Task/{created['id']}").status_code == 200
