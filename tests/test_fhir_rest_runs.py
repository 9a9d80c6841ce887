"""The reconciler through the REST connectors, against the real FHIR test server.

The agent finds the chart, auto-fixes low-risk differences with ``If-Match`` writes, and holds
the high-risk ones; a chart someone else changes while a fix waits for its reviewer is held
again on the chart as it is now: the server keeps the other person's value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from carebound import Approve, Runner, RunView
from carebound.approvals import ApprovalRequest
from carebound.tools.connectors import Connectors, RunContext, WorldSpec
from carebound.tools.connectors.fhir_rest import FhirRestClient, RestEHR
from carebound.tools.connectors.fhir_world import FhirBases, seed_world
from carebound.tools.connectors.simulated import SimulatedERP, SimulatedOutreach, SimulatedPayer
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirBases as ServerBases

RunnerFactory = Callable[..., Runner]


def load(rel: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / rel).read_text()))


@pytest.fixture
def rest_runner(
    make_runner: RunnerFactory, fhir_bases: ServerBases, redis_client: redis.Redis
) -> Iterator[Runner]:
    """A Runner whose EHR is the real FHIR server (no payer connected, as in the scenario)."""
    clients: list[FhirRestClient] = []

    def connectors(run: RunContext) -> Connectors:
        http = FhirRestClient(fhir_bases.ehr, system="ehr")
        clients.append(http)
        client, run_id, prefix = run.client, run.run_id, run.prefix
        return Connectors(
            ehr=RestEHR(http),
            outreach=SimulatedOutreach(client, run_id, prefix=prefix),
            payer=SimulatedPayer(client, run_id, prefix=prefix),
            erp=SimulatedERP(client, run_id, prefix=prefix),
        )

    spec = WorldSpec.from_bundles(load("ehr/reconcile_dob_swap.json"), None)
    bases = FhirBases.under(fhir_bases.root)
    with httpx.Client() as http:
        seed_world(spec, bases, http)
    yield make_runner(connectors=connectors)
    for http in clients:
        http.close()


def chart(bases: ServerBases) -> dict[str, Any]:
    response = httpx.get(f"{bases.ehr}/Patient/ehr-osei")
    assert response.status_code == 200, response.text
    return dict(response.json())


def pending(view: RunView) -> ApprovalRequest:
    assert view.pending is not None, view.record.summary
    return view.pending.request


def approve(runner: Runner, view: RunView) -> RunView:
    request = pending(view)
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    return runner.decide(request.approval_id, decision).run


def test_fixes_reach_the_server_and_a_changed_chart_is_held_again(
    rest_runner: Runner, fhir_bases: ServerBases
) -> None:
    view = rest_runner.start("reconciler", load("cases/reconcile_dob_swap.json"), requester="sam")
    first = pending(view)
    assert (first.rule_id, first.args["before"]) == ("REC-3", "1980-07-04")
    # The low-risk phone fix was written to the server; the DOB waits for a person.
    before = chart(fhir_bases)
    assert before["birthDate"] == "1980-07-04"
    assert [e.tool for e in view.effects] == ["reconcile_fix_demographic"]
    # Someone corrects the chart on the server while the fix waits.
    edited = httpx.put(
        f"{fhir_bases.ehr}/Patient/ehr-osei", json={**before, "birthDate": "1980-07-14"}
    )
    assert edited.status_code == 200, edited.text

    view = approve(rest_runner, view)

    again = pending(view)
    assert (again.rule_id, again.args["before"]) == ("REC-6", "1980-07-14")
    assert chart(fhir_bases)["birthDate"] == "1980-07-14"  # not overwritten

    view = approve(rest_runner, view)

    assert view.status == "completed", view.record.summary
    after = chart(fhir_bases)
    assert after["birthDate"] == "1980-04-07"
    history = httpx.get(f"{fhir_bases.ehr}/Patient/ehr-osei/_history").json()
    # seed, the phone fix, the other person's edit, the approved DOB: nothing written twice
    assert len(history["entry"]) == 4
