"""A run rides out a referring office's FHIR endpoint going down (issue 15).

The referral chaser's outreach goes out as Da Vinci CDex Tasks to the ``/office`` base of a real
FHIR server (testing/fhir-server, persisting to a file) that the test kills and restarts
mid-run; the EHR stays simulated. The run parks in ``waiting`` with a reason naming the system
and a retry timer, resumes when the server is back (breaker closed), creates one Task, and gets
the office's reply through the worker's sweep. Past the pack's limit a person has the case, and
the run keeps waiting for the office (the send is never dropped).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import httpx
import redis

from carebound import Runner, VirtualClock, load_policy_pack
from carebound.state.breaker import BreakerStore
from carebound.testing import Fault, FaultProxy, FaultSchedule
from carebound.tools.connectors import Connectors, RunContext
from carebound.tools.connectors import WorldSpec as Spec
from carebound.tools.connectors.outreach_channels import EFFECT_ID_SYSTEM, build_outreach
from carebound.tools.connectors.simulated import SimulatedConnectors
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirBases, FhirServerProcess, fhir_json
from tests.test_cli import cli, cli_json
from tests.test_outreach_cdex import complete_task, office_config

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OFFICE_URL = "https://office.northside.test/fhir"


class HybridWorld:
    """The runs' connectors: simulated EHR, payer and ERP; outreach by CDex to a real server."""

    def __init__(self, office: str, clock: VirtualClock) -> None:
        self.office = office
        self.clock = clock
        self.simulated = SimulatedConnectors()

    def __call__(self, run: RunContext, /) -> Connectors:
        world = self.simulated(run)
        outreach = build_outreach(office_config(self.office), run, clock=self.clock.now)
        return Connectors(ehr=world.ehr, payer=world.payer, erp=world.erp, outreach=outreach)

    def seed_world(self, run: RunContext, spec: Spec, /) -> None:
        self.simulated.seed_world(run, spec)


def _case() -> dict[str, Any]:
    """A referral with no progress note, whose referring practitioner is on file with only a
    FHIR endpoint (ContactPoint system ``url``): the chaser asks by CDex."""
    case = json.loads((SCENARIOS / "cases" / "chase_no_note.json").read_text())
    for entry in case["entry"]:
        if entry["resource"]["resourceType"] == "Practitioner":
            entry["resource"]["telecom"] = [{"system": "url", "value": OFFICE_URL}]
    return dict(case)


def _runner(client: redis.Redis, prefix: str, office: str, **kwargs: Any) -> Runner:
    clock = VirtualClock(MONDAY)
    return Runner(
        client, prefix=prefix, clock=clock,
        connectors=HybridWorld(office, clock), **kwargs,
    )  # fmt: skip


def _office_tasks(office: str) -> list[dict[str, Any]]:
    bundle = fhir_json(httpx.get(f"{office}/Task", params={"_count": "100"}))
    return [e["resource"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined]


def test_a_run_parks_while_the_office_is_down_and_resumes_when_it_is_back(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess, env: str
) -> None:
    office = f"{fhir_process.url}/office"
    runner = _runner(redis_client, key_prefix, office)
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    fhir_process.kill()
    view = runner.start("referral_chaser", _case(), requester="sam", world=Spec.from_bundles(
        _case(), None))  # fmt: skip
    assert view.status == "waiting"
    reason = view.record.wait_reason or ""
    assert reason.startswith("waiting for office to come back (try 1 of 8 failed")
    assert view.record.wait_until == MONDAY + dt.timedelta(minutes=1)
    assert BreakerStore(redis_client, prefix=key_prefix).state("office") == "open"
    [listed] = runner.list_runs(status="waiting")
    assert listed.run_id == view.run_id and listed.wait_reason == reason
    # Operators see why in 'carebound runs' (the store is all it reads).
    [row] = cli_json("runs")["runs"]
    assert row["status"] == "waiting" and row["wait_reason"] == reason
    assert "waiting for office to come back (try 1 of 8" in cli("runs").stdout

    # Still down at the first retry: parked again, the wait doubled.
    clock.advance(dt.timedelta(minutes=1))
    runner.sweep()
    view = runner.get(view.run_id)
    assert view.status == "waiting"
    assert (view.record.wait_reason or "").startswith("waiting for office to come back (try 2")
    assert view.record.wait_until == clock.now() + dt.timedelta(minutes=2)

    # Back up: the next retry (the breaker's probe) creates the one Task, and the run goes on
    # to wait for the office's answer.
    fhir_process.start()
    clock.advance(dt.timedelta(minutes=2))
    runner.sweep()
    view = runner.get(view.run_id)
    assert view.status == "waiting"
    assert "waiting for the referring office to answer" in (view.record.wait_reason or "")
    assert BreakerStore(redis_client, prefix=key_prefix).state("office") == "closed"
    [task] = _office_tasks(office)
    key = task["identifier"][0]["value"]
    assert task["identifier"][0]["system"] == EFFECT_ID_SYSTEM
    assert [e.status for e in view.effects if e.key == key] == ["done"]

    # The office answers; the server restarts (keeping what it acknowledged); the sweep polls
    # the Task and delivers the reply to the run.
    complete_task(office, f"Task/{task['id']}")
    fhir_process.restart()
    report = runner.sweep()
    assert report.replies_delivered == 1
    view = runner.get(view.run_id)
    assert view.findings["chase"]["replies"] == [f"cdex-{task['id']}"]
    assert len(_office_tasks(office)) == 1


def test_after_the_packs_limit_a_person_has_the_case_and_the_run_still_waits(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess
) -> None:
    pack = load_policy_pack("default")
    settings = copy.deepcopy(pack.settings)
    settings["outage"] = {"retry_first": "PT1M", "retry_cap": "PT2M", "hand_off_after": 3}
    pack = pack.model_copy(update={"settings": settings})
    office = f"{fhir_process.url}/office"
    runner = _runner(redis_client, key_prefix, office, policy=pack)
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    fhir_process.kill()
    view = runner.start("referral_chaser", _case(), requester="sam", world=Spec.from_bundles(
        _case(), None))  # fmt: skip
    waits = [view.record.wait_until]
    for _ in range(3):
        assert view.record.wait_until is not None
        clock.advance_to(view.record.wait_until)
        runner.sweep()
        view = runner.get(view.run_id)
        waits.append(view.record.wait_until)
    assert waits == [MONDAY + dt.timedelta(minutes=m) for m in (1, 3, 5, 7)]  # capped at 2
    # The third try failed: the case went to a person (in carebound's store: the office is
    # down), and the send is kept, not dropped: the run still waits for the office.
    assert view.status == "waiting"
    reason = view.record.wait_reason or ""
    assert reason.startswith("waiting for office to come back (try 4 failed")
    assert "the case is with intake_coordinator since try 3" in reason
    assert [r.tool for r in view.results if r.tool == "send_request_attempt"] == []
    trail = [e for e in runner.audit_log.events(view.run_id) if e.action == "event"]
    kinds = [e.detail.get("kind") for e in trail]
    assert kinds.count("outage") == 4 and kinds.count("hand_off") == 1
    assert all("office.northside" not in json.dumps(e.detail) for e in trail)
    # The office is back: the send goes out once, and the chase goes on.
    fhir_process.start()
    clock.advance_to(waits[-1])
    runner.sweep()
    view = runner.get(view.run_id)
    assert "waiting for the referring office to answer" in (view.record.wait_reason or "")
    [sent] = [r for r in view.results if r.tool == "send_request_attempt"]
    assert sent.status == "executed"
    assert len(_office_tasks(office)) == 1


def test_a_send_whose_answer_is_lost_after_the_server_did_the_work_makes_one_task(
    redis_client: redis.Redis, key_prefix: str, fhir_bases: FhirBases
) -> None:
    # The proxy forwards the first request (the Task's conditional create), then resets the
    # connection half-way through the answer: the server created the Task, carebound never
    # heard. The retry finds it by its effect identifier instead of creating a second.
    schedule = FaultSchedule(script=[Fault.RESET])
    root = fhir_bases.root
    with FaultProxy(root.rsplit("/", 1)[0], schedule) as proxy:
        office = f"{proxy.url}/{root.rsplit('/', 1)[1]}/office"
        runner = _runner(redis_client, key_prefix, office)
        view = runner.start("referral_chaser", _case(), requester="sam", world=Spec.from_bundles(
            _case(), None))  # fmt: skip
        assert [(r.method, r.fault) for r in proxy.log[:2]] == [
            ("POST", Fault.RESET), ("POST", Fault.PASS)]  # fmt: skip
    assert "waiting for the referring office to answer" in (view.record.wait_reason or "")
    [task] = _office_tasks(fhir_bases.office)
    [sent] = [e for e in view.effects if e.tool == "send_request_attempt"]
    assert task["identifier"][0]["value"] == sent.key and sent.status == "done"
