"""A reviewer's decision is never lost because the EHR is down (issue 15).

Referral intake runs on the real FHIR test server (testing/fhir-server, persisting to a file,
killed and restarted here) through the connectors ``carebound run --fhir-server`` builds: the EHR
over FHIR REST, the referring office over CDex. An intake coordinator approves the referral
(REF-1) while the EHR is down. The run parks on the EHR; past the pack's limit the case is handed
to a person (recorded in carebound's own store), and the run keeps waiting: the approved
decision is written once the EHR is back, and the run completes. The breaker and the run's
retry timers run on the run's (virtual) clock, so the first retry after the EHR is back is the
breaker's probe, and it goes through.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from carebound import ApprovalRequest, Approve, Runner, VirtualClock, load_policy_pack
from carebound.engine.results import RunView
from carebound.state.breaker import BreakerStore
from carebound.state.runs import FINAL_STATUSES
from carebound.tools.connectors import ConfiguredConnectors
from carebound.tools.connectors import WorldSpec as Spec
from carebound.tools.connectors.config import connectors_config
from carebound.tools.connectors.outreach_channels import EFFECT_ID_SYSTEM
from tests.conftest import SCENARIOS
from tests.fhir_server import FhirServerProcess, fhir_json
from tests.test_outreach_cdex import complete_task

MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
FAST = {
    "retry": {"attempts": 2, "backoff_s": 0.01, "cap_s": 1, "jitter_s": 0.01},
    "breaker": {"failure_threshold": 1, "reset_timeout_s": 30},
    "timeouts": {"connect_s": 1, "read_s": 5},
}


def _case() -> dict[str, Any]:
    """A referral missing its progress note; the referring practitioner has a FHIR endpoint."""
    case = json.loads((SCENARIOS / "cases" / "chase_no_note.json").read_text())
    for entry in case["entry"]:
        if entry["resource"]["resourceType"] == "Practitioner":
            entry["resource"]["telecom"] = [{"system": "url", "value": "https://office.test/fhir"}]
    return dict(case)


def _runner(client: redis.Redis, prefix: str, root: str) -> Runner:
    pack = load_policy_pack("default")
    settings = copy.deepcopy(pack.settings)
    settings["outage"] = {"retry_first": "PT1M", "retry_cap": "PT4M", "hand_off_after": 3}
    config = connectors_config({
        "ehr": {"base_url": f"{root}/ehr", **FAST},
        "office": {"cdex": {"base_url": f"{root}/office", "channels": ["portal"], **FAST}},
        "erp": {"provider": "simulated"},
    })  # fmt: skip
    return Runner(
        client,
        prefix=prefix,
        clock=VirtualClock(MONDAY),
        policy=pack.model_copy(update={"settings": settings}),
        connectors=ConfiguredConnectors(config),
    )


def _search(url: str, **params: str) -> list[dict[str, Any]]:
    bundle = fhir_json(httpx.get(url, params={**params, "_count": "1000"}))
    return [e["resource"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined]


def _step(runner: Runner, run_id: str, root: str, *, approve_referral: bool) -> RunView:
    """Play the office, approve the holds (the referral's only if asked), let time pass."""
    for task in _search(f"{root}/office/Task", status="requested"):
        complete_task(f"{root}/office", f"Task/{task['id']}")
    for held in runner.pending(limit=20):
        if held.request.tool == "set_referral_status" and not approve_referral:
            continue
        role = held.required_role
        reviewer = {"intake_coordinator": "casey", "supervisor": "jordan"}.get(role, "robin")
        runner.decide(held.request.approval_id, Approve(
            reviewer=reviewer, role=role, args_hash=held.request.args_hash))  # fmt: skip
    runner.sweep()
    view = runner.get(run_id)
    if view.status == "waiting" and view.record.wait_until is not None:
        clock = runner.clock
        assert isinstance(clock, VirtualClock)
        clock.advance_to(max(view.record.wait_until, clock.now()))
        runner.sweep()
    return runner.get(run_id)


@pytest.fixture
def intake(
    redis_client: redis.Redis, key_prefix: str, fhir_process: FhirServerProcess
) -> Iterator[Runner]:
    """A Runner of referral intake on this test's own FHIR server (closed afterwards)."""
    runner = _runner(redis_client, key_prefix, fhir_process.url)
    yield runner
    connectors = runner.connectors
    assert isinstance(connectors, ConfiguredConnectors)
    connectors.close()


def _held_referral(runner: Runner, root: str) -> tuple[str, ApprovalRequest]:
    """Start an intake run and move it on until the referral's decision is held (REF-1)."""
    run_id = runner.start(
        "referral_intake", _case(), requester="sam", world=Spec.from_bundles(_case(), None)
    ).run_id
    for _ in range(30):  # chase, reconcile, until the referral's decision is held
        view = _step(runner, run_id, root, approve_referral=False)
        if view.pending is not None and view.pending.request.tool == "set_referral_status":
            assert view.pending.request.args["status"] == "accepted"
            return run_id, view.pending.request
    raise AssertionError(f"the referral's decision was never held: {view.status}")


def _approve(runner: Runner, held: ApprovalRequest) -> RunView:
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=held.args_hash)
    return runner.decide(held.approval_id, decision).run


def _finish(runner: Runner, run_id: str, root: str) -> RunView:
    for _ in range(10):
        view = _step(runner, run_id, root, approve_referral=True)
        if view.status in FINAL_STATUSES:
            break
    return view


def _ehr_effect_ids(root: str) -> Counter[str]:
    """How many EHR resources carry each effect identifier."""
    found: Counter[str] = Counter()
    for kind in ("Task", "Communication", "DocumentReference"):
        for resource in _search(f"{root}/ehr/{kind}"):
            for ident in resource.get("identifier") or []:
                if ident.get("system") == EFFECT_ID_SYSTEM:
                    found[f"{kind}:{ident['value']}"] += 1
    return found


def _approved_while_the_ehr_is_down(
    runner: Runner, fhir_process: FhirServerProcess
) -> tuple[VirtualClock, RunView]:
    """An intake run whose referral an intake coordinator approved while the EHR was down."""
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    _, held = _held_referral(runner, fhir_process.url)
    fhir_process.kill()
    view = _approve(runner, held)
    assert view.status == "waiting" and view.record.wait_until is not None
    assert (view.record.wait_reason or "").startswith("waiting for ehr to come back (try 1 of 3")
    assert BreakerStore(runner.client, prefix=runner.prefix).state("ehr") == "open"
    return clock, view


def test_an_approved_decision_waits_for_the_ehr_and_is_written_once_it_is_back(
    intake: Runner, fhir_process: FhirServerProcess
) -> None:
    runner, root = intake, fhir_process.url
    clock, view = _approved_while_the_ehr_is_down(runner, fhir_process)
    run_id = view.run_id
    for _ in range(3):  # tries 2, 3 (the hand-off) and 4: the EHR stays down
        assert view.record.wait_until is not None
        clock.advance_to(view.record.wait_until)
        runner.sweep()
        view = runner.get(run_id)
    # Past the pack's limit a person has the case, and the run still waits: nothing is lost.
    assert view.status == "waiting", view.record.summary
    reason = view.record.wait_reason or ""
    assert reason.startswith("waiting for ehr to come back (try 4 failed")
    assert "the case is with intake_coordinator since try 3" in reason
    assert view.record.wait_until == clock.now() + dt.timedelta(minutes=4)  # the cap
    trail = [e for e in runner.audit_log.events(run_id) if e.action == "event"]
    [handed] = [e for e in trail if e.detail.get("kind") == "hand_off"]
    assert (handed.detail["system"], handed.detail["role"]) == ("ehr", "intake_coordinator")
    assert [r.status for r in view.results if r.tool == "set_referral_status"] == []

    fhir_process.start()  # the EHR is back: the next retry (the breaker's probe) writes it
    view = _finish(runner, run_id, root)
    assert view.status == "completed", view.record.summary
    assert [r.status for r in view.results if r.tool == "set_referral_status"] == ["executed"]
    assert BreakerStore(runner.client, prefix=runner.prefix).state("ehr") == "closed"
    referral = _search(f"{root}/ehr/Task", status="accepted")
    assert len(referral) == 1
    effect_ids = _ehr_effect_ids(root)
    assert effect_ids and max(effect_ids.values()) == 1


def test_the_breaker_cools_down_on_the_runs_clock(
    intake: Runner, fhir_process: FhirServerProcess
) -> None:
    # The breaker opens for 30 s; the run's first retry is due a minute later on its (virtual)
    # clock. The breaker reads that clock too, so the retry is its probe: the EHR is back, and
    # the decision is written at the first retry, not refused by a breaker still open on
    # the wall clock.
    runner = intake
    clock, view = _approved_while_the_ehr_is_down(runner, fhir_process)
    run_id = view.run_id
    assert view.record.wait_until is not None
    fhir_process.start()
    clock.advance_to(view.record.wait_until)
    runner.sweep()
    view = runner.get(run_id)
    assert [r.status for r in view.results if r.tool == "set_referral_status"] == ["executed"]
    assert [e.detail["tries"] for e in runner.audit_log.events(run_id)
            if e.detail.get("kind") == "outage"] == [1]  # fmt: skip
