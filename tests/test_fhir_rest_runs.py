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
from carebound._errors import DecisionRefusedError
from carebound.approvals import ApprovalRequest, Edit
from carebound.testing import FaultProxy, FaultSchedule
from carebound.tools.connectors import Connectors, RunContext, SystemUnavailableError, WorldSpec
from carebound.tools.connectors._unconnected import (
    UnconnectedERP,
    UnconnectedOutreach,
    UnconnectedPayer,
)
from carebound.tools.connectors.fhir_rest import FhirRestClient, RestEHR
from carebound.tools.connectors.fhir_world import FhirBases, seed_world
from carebound.tools.connectors.simulated import SimulatedERP, SimulatedOutreach, SimulatedPayer
from carebound.tools.reconcile import assess_fix
from carebound.web._problems import problem_for
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirBases as ServerBases
from tests.servers import free_port

RunnerFactory = Callable[..., Runner]


def load(rel: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / rel).read_text()))


def rest_connectors(ehr: str, clients: list[FhirRestClient]) -> Callable[[RunContext], Connectors]:
    """Each run's connectors: the EHR over REST at ``ehr`` (its clients kept in ``clients``,
    to close), the other systems simulated."""

    def connectors(run: RunContext) -> Connectors:
        http = FhirRestClient(ehr, system="ehr")
        clients.append(http)
        client, run_id, prefix = run.client, run.run_id, run.prefix
        return Connectors(
            ehr=RestEHR(http),
            outreach=SimulatedOutreach(client, run_id, prefix=prefix),
            payer=SimulatedPayer(client, run_id, prefix=prefix),
            erp=SimulatedERP(client, run_id, prefix=prefix),
        )

    return connectors


def seed_chart(fhir_bases: ServerBases) -> None:
    """The reconcile_dob_swap scenario's EHR chart, on the server."""
    spec = WorldSpec.from_bundles(load("ehr/reconcile_dob_swap.json"), None)
    with httpx.Client() as http:
        seed_world(spec, FhirBases.under(fhir_bases.root), http)


@pytest.fixture
def rest_runner(
    make_runner: RunnerFactory, fhir_bases: ServerBases, redis_client: redis.Redis
) -> Iterator[Runner]:
    """A Runner whose EHR is the real FHIR server (no payer connected, as in the scenario)."""
    clients: list[FhirRestClient] = []
    seed_chart(fhir_bases)
    yield make_runner(connectors=rest_connectors(fhir_bases.ehr, clients))
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


def test_an_edit_checked_while_the_ehr_is_down_is_refused_and_not_recorded(
    make_runner: RunnerFactory, fhir_bases: ServerBases
) -> None:
    # An edit is judged again like a proposed call, and its facts are read from the EHR. With
    # the EHR down that check cannot be made: the decision is refused with a clear reason (an
    # HTTP 503, not a 422 whose hint said "it is tried again later (the run waits)": nothing
    # was stored), and the hold stays pending for a decision once the EHR is back.
    upstream, base_name = fhir_bases.root.rsplit("/", 1)
    clients: list[FhirRestClient] = []
    seed_chart(fhir_bases)
    with FaultProxy(upstream) as proxy:
        ehr = f"{proxy.url}/{base_name}/ehr"
        runner = make_runner(connectors=rest_connectors(ehr, clients))
        view = runner.start("reconciler", load("cases/reconcile_dob_swap.json"), requester="sam")
        held = pending(view)
        assert held.rule_id == "REC-3"
        proxy.set_schedule(FaultSchedule(rates={"error_503": 1.0}))
        edit = Edit(reviewer="casey", role=held.required_role, args_hash=held.args_hash,
                    args={**held.args, "value": "1980-04-07"})  # fmt: skip
        with pytest.raises(DecisionRefusedError) as refused:
            runner.decide(held.approval_id, edit)
        assert refused.value.code == "system_unavailable"
        assert refused.value.message.startswith("cannot check the edited call: ehr")
        assert "the decision was not recorded" in refused.value.message
        assert "decide again once ehr is back" in (refused.value.hint or "")
        assert problem_for(refused.value).status == 503
        assert runner.approvals.get(held.approval_id).status == "pending"  # type: ignore[union-attr]
    for client in clients:
        client.close()


def test_a_fix_judged_while_the_ehr_is_down_is_not_denied_as_aimed_at_another_chart() -> None:
    # The gate reads the chart to judge a fix (REC-1: a fix aimed at a chart the referral was
    # not matched to is denied). With the EHR down, the read failed, the assessment said "not
    # matched", and the fix was denied for good as aimed at another chart. The outage now
    # reaches the engine, which waits for the EHR instead of judging on a wrong fact.
    http = FhirRestClient(f"http://127.0.0.1:{free_port()}/ehr", system="ehr")
    down = Connectors(ehr=RestEHR(http), outreach=UnconnectedOutreach(),
                      payer=UnconnectedPayer(), erp=UnconnectedERP())  # fmt: skip
    case = load("cases/reconcile_dob_swap.json")
    with pytest.raises(SystemUnavailableError):
        assess_fix(down, case, "ehr-osei", "birthDate", "1980-04-07")
    http.close()
