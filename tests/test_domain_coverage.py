"""Coverage in force (issue 13): active AND a period covering the date of service AND the payer's
eligibility answer when there is one. Otherwise a coverage finding, a failed packet check citing
the pack rule, a chase for current insurance, and never a recommendation to accept."""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Any

import pytest

from carebound import Runner, VirtualClock, load_policy_pack
from carebound.agents.reconciler import RECONCILER
from carebound.domain.coverage import CoverageTerms, coverage_in_force, service_date
from carebound.tools.connectors import WorldSpec
from tests.conftest import SCENARIOS

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORDERED = date(2026, 2, 27)


def load(rel: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / rel).read_text()))


def resource(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "problems"),
    [
        (CoverageTerms(source="c", status="active"), []),
        (CoverageTerms(source="c", status="active", start=date(2026, 1, 1)), []),
        (CoverageTerms(source="c", status="active", end=date(2021, 12, 31)), ["ended"]),
        (CoverageTerms(source="c", status="active", start=date(2026, 6, 1)), ["not_started"]),
        (CoverageTerms(source="c", status="cancelled"), ["not_active"]),
        (
            CoverageTerms(source="c", status="active", eligibility_inforce=False),
            ["eligibility_not_inforce"],
        ),
        (CoverageTerms(source="c", status="active", eligibility_inforce=True), []),
    ],
)
def test_in_force_needs_status_period_and_eligibility(
    terms: CoverageTerms, problems: list[str]
) -> None:
    verdict = coverage_in_force(terms, ORDERED)
    assert verdict.problems == problems
    assert verdict.in_force is (not problems)
    assert "2021" not in verdict.explanation and "2026" not in verdict.explanation


def test_the_date_of_service_is_the_occurrence_else_authored_on() -> None:
    assert service_date({"authoredOn": "2026-02-27"}) == ORDERED
    assert service_date(
        {"authoredOn": "2026-02-27", "occurrencePeriod": {"start": "2026-04-01"}}
    ) == date(2026, 4, 1)
    assert service_date(
        {"authoredOn": "2026-02-27", "occurrenceDateTime": "2026-05-02T10:00:00Z"}
    ) == date(2026, 5, 2)
    assert service_date({}) is None
    period_only = CoverageTerms(source="c", status="active", end=date(2030, 1, 1))
    assert coverage_in_force(period_only, None).problems == ["no_service_date"]


# --- the packet --------------------------------------------------------------------------------


def _expired(case: dict[str, Any]) -> dict[str, Any]:
    case = copy.deepcopy(case)
    resource(case, "Coverage")["period"] = {"start": "2019-01-01", "end": "2021-12-31"}
    return case


def test_an_active_coverage_whose_period_ended_is_never_recommended(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = _expired(load("cases/packet_complete.json"))
    view = runner.start(
        "packet_builder", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    assert view.pending is not None
    packet = view.pending.request.packet
    assert packet.recommendation == "reject"
    [check] = [c for c in packet.checks if c.rule_id == "REQ-COV"]
    assert check.passed is False
    assert "period ended before the date of service" in check.detail
    pack = load_policy_pack("default")
    requirement = next(
        r for r in pack.settings["referral_chaser"]["requirements"] if r["id"] == "REQ-COV"
    )
    assert check.rule_text == " ".join(requirement["text"].split())
    assert "period" in check.rule_text and "date of service" in check.rule_text
    assert {"code": "coverage", "display": "Insurance coverage"} in view.findings[
        "missing_documents"
    ]


def test_eligibility_in_the_case_saying_not_in_force_fails_the_check(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = copy.deepcopy(load("cases/packet_complete.json"))
    coverage = resource(case, "Coverage")
    case["entry"].append(
        {
            "resource": {
                "resourceType": "CoverageEligibilityResponse",
                "id": "elig-lapsed",
                "status": "active",
                "purpose": ["validation"],
                "patient": {"reference": "Patient/pat-delgado"},
                "created": "2026-02-27",
                "request": {"reference": "CoverageEligibilityRequest/er-1"},
                "outcome": "complete",
                "insurer": {"reference": "Organization/org-acme-health"},
                "insurance": [
                    {"coverage": {"reference": f"Coverage/{coverage['id']}"}, "inforce": False}
                ],
            }
        }
    )
    view = runner.start(
        "packet_builder", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    assert view.pending is not None
    packet = view.pending.request.packet
    [check] = [c for c in packet.checks if c.rule_id == "REQ-COV"]
    assert check.passed is False and "eligibility" in check.detail
    assert packet.recommendation == "reject"


def test_the_chaser_asks_the_office_for_current_insurance(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = _expired(load("cases/chase_no_note.json"))
    view = runner.start(
        "referral_chaser", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    codes = {m["code"] for m in view.findings["missing_documents"]}
    assert "coverage" in codes
    sent = [r for r in view.results if r.tool in ("open_document_request", "send_request_attempt")]
    assert sent, view.record.summary
    assert any("coverage" in json.dumps(r.args) for r in sent)


# --- the reconciler ------------------------------------------------------------------------------


def test_the_reconciler_reports_a_coverage_not_in_force(make_runner: Any) -> None:
    runner: Runner = make_runner(agents={"reconciler": RECONCILER})
    case = _expired(load("cases/reconcile_low_risk.json"))
    world = WorldSpec.from_bundles(load("ehr/reconcile_low_risk.json"), None)
    view = runner.start("reconciler", case, requester="sam", world=world)
    [coverage] = [m for m in view.findings["mismatches"] if m["field"] == "coverage"]
    assert (coverage["risk"], coverage["action"], coverage["kind"]) == (
        "high",
        "held",
        "coverage_not_in_force",
    )
    assert "2021" not in coverage["explanation"]


def test_the_payers_lapsed_coverage_is_reported_too(make_runner: Any) -> None:
    runner: Runner = make_runner(agents={"reconciler": RECONCILER})
    payer = copy.deepcopy(load("payer/reconcile_alvarez.json"))
    resource(payer, "Coverage")["period"] = {"end": "2025-12-31"}
    world = WorldSpec.from_bundles(load("ehr/reconcile_low_risk.json"), payer)
    view = runner.start(
        "reconciler", load("cases/reconcile_low_risk.json"), requester="sam", world=world
    )
    [coverage] = [m for m in view.findings["mismatches"] if m["field"] == "coverage"]
    assert coverage["risk"] == "high" and "payer" in coverage["values"]


def test_the_payers_eligibility_answer_not_in_force_blocks_acceptance(make_runner: Any) -> None:
    runner: Runner = make_runner(clock=VirtualClock(MONDAY))
    case = load("cases/packet_complete.json")
    payer = copy.deepcopy(load("payer/intake_delgado.json"))
    resource(payer, "CoverageEligibilityResponse")["insurance"][0]["inforce"] = False
    world = WorldSpec.from_bundles(case, payer)
    view = runner.start("packet_builder", case, requester="sam", world=world)
    assert view.pending is not None
    packet = view.pending.request.packet
    [check] = [c for c in packet.checks if c.rule_id == "ACC-PAYER"]
    assert check.passed is False
    assert "eligibility response says it is not in force" in check.detail
    assert packet.recommendation == "reject"
    # The same payer saying in force confirms the coverage.
    runner2: Runner = make_runner(clock=VirtualClock(MONDAY))
    fine = runner2.start(
        "packet_builder",
        case,
        requester="sam",
        world=WorldSpec.from_bundles(case, load("payer/intake_delgado.json")),
    )
    assert fine.pending is not None
    [ok] = [c for c in fine.pending.request.packet.checks if c.rule_id == "ACC-PAYER"]
    assert ok.passed is True
    assert fine.pending.request.packet.recommendation == "approve"


def test_views_of_one_parsed_case_are_judged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planner derives case views from one parsed Bundle (the documents it filed added):
    their Coverages are judged once, not once per view; another Bundle is judged on its own."""
    import dataclasses

    from carebound.domain import coverage
    from carebound.fhir import _case_cache, referral_case_of

    judged: list[object] = []
    judge = coverage._judge_case

    def counting(case: Any) -> Any:
        judged.append(case)
        return judge(case)

    monkeypatch.setattr(coverage, "_judge_case", counting)
    # Both caches are per process: empty them, or an earlier test's judging of this Bundle is
    # found here and nothing is judged at all.
    monkeypatch.setattr(coverage, "_verdicts", OrderedDict())
    monkeypatch.setattr(_case_cache, "_cases", OrderedDict())
    bundle = load("cases/intake_delgado.json")
    case = referral_case_of(bundle, source="run a case")
    first = coverage.case_coverage(case)
    view = dataclasses.replace(case, documents=())
    assert coverage.case_coverage(view) == first
    assert coverage.case_coverage(referral_case_of(bundle, source="run b case")) == first
    assert len(judged) == 1
    lapsed = referral_case_of(_expired(copy.deepcopy(bundle)), source="run c case")
    assert coverage.case_coverage(lapsed) != first
    assert len(judged) == 2
