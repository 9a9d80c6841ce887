"""The reconciler agent through the real Runner: demographic fixes and holds, the three-way match,
the findings contract, the audit trail, and the public Synthea identity variants."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carebound import (
    AgentContext,
    AgentDefinition,
    Approve,
    DecisionRefusedError,
    Edit,
    FinishSpec,
    Plan,
    PlannerView,
    ProposedCall,
    Reject,
    Runner,
    RunView,
    load_policy_pack,
    run_report,
)
from carebound._phi import revealed_events
from carebound.agents.reconciler import (
    RECONCILER,
    RECONCILER_TOOLS,
    plan_reconcile,
    reconcile_packet,
)
from carebound.guardrails import PolicyPack
from carebound.state.audit_codec import unpack_event
from carebound.tools.connectors import (
    ErpData,
    WorldSpec,
)
from carebound.tools.connectors.simulated import World
from tests.conftest import SCENARIOS

RunnerFactory = Callable[..., Runner]
MRN = "http://hospital.example.org/mrn"


def load(rel: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / rel).read_text()))


def world_of(ehr: str | None = None, payer: str | None = None, erp: str | None = None) -> WorldSpec:
    return WorldSpec.from_bundles(
        load(ehr) if ehr else None,
        load(payer) if payer else None,
        erp=ErpData.model_validate(load(erp)) if erp else None,
    )


def runner_with(make_runner: RunnerFactory, *agents: AgentDefinition) -> Runner:
    return make_runner(agents={a.name: a for a in (RECONCILER, *agents)})


def start(runner: Runner, case: str, **world: str | None) -> RunView:
    return runner.start("reconciler", load(case), requester="sam", world=world_of(**world))


def world(runner: Runner, view: RunView) -> World:
    return World.attach(runner.client, view.run_id, prefix=runner.prefix)


def items(view: RunView) -> dict[str, dict[str, Any]]:
    return {m["field"]: m for m in view.findings.get("mismatches", [])}


def approve(
    runner: Runner, view: RunView, reviewer: str = "casey", role: str = "intake_coordinator"
) -> RunView:
    assert view.pending is not None
    request = view.pending.request
    decision = Approve(reviewer=reviewer, role=role, args_hash=request.args_hash)
    return runner.decide(request.approval_id, decision).run


def reject(
    runner: Runner,
    view: RunView,
    reason: str,
    reviewer: str = "casey",
    role: str = "intake_coordinator",
) -> RunView:
    assert view.pending is not None
    request = view.pending.request
    decision = Reject(reviewer=reviewer, role=role, args_hash=request.args_hash, reason=reason)
    return runner.decide(request.approval_id, decision).run


# --- demographics: low risk --------------------------------------------------------------------


def test_low_risk_differences_are_fixed_and_audited(make_runner: RunnerFactory) -> None:
    runner = runner_with(make_runner)
    view = start(
        runner,
        "cases/reconcile_low_risk.json",
        ehr="ehr/reconcile_low_risk.json",
        payer="payer/reconcile_alvarez.json",
    )
    assert view.status == "completed", view.record.summary
    report = run_report(view)
    assert {(m.field, m.risk, m.action) for m in report.findings.mismatches} == {
        ("name.given", "low", "auto_fixed"),
        ("address", "low", "auto_fixed"),
        ("address.postalCode", "low", "auto_fixed"),
        ("telecom.phone", "low", "auto_fixed"),
    }
    for m in report.findings.mismatches:
        # The payer's record is compared too (it agrees with the referral on the legal name).
        assert {"referral", "ehr"} <= set(m.values) <= {"referral", "ehr", "payer"}
    assert report.findings.missing_documents == []
    assert view.findings["reconcile"]["verified"] is True
    chart = world(runner, view).ehr.read("Patient", "ehr-alvarez")
    assert chart["name"][0]["given"] == ["Margarita"]
    assert chart["address"][0]["line"] == ["482 MAPLE LN"]
    assert chart["address"][0]["postalCode"] == "27513-2207"
    assert chart["telecom"][0]["value"] == "+19195550142"
    assert chart["birthDate"] == "1972-06-15"
    effects = [e for e in runner.audit(view.run_id) if e.action == "effect"]
    # The audit trail stores where each value is kept (the effect ledger), not the value ...
    for e in effects:
        ref = f"ref:effect/{e.detail['key']}#"
        assert (e.detail["before"], e.detail["after"]) == (ref + "before", ref + "after")
    stream = runner.client.xrange(f"{runner.prefix}:{{{view.run_id}}}:audit")
    stored = "".join(str(unpack_event(fields[b"event"])) for _, fields in stream)
    for value in ("Rita", "Maple Lane", "MAPLE LN", "27513", "919.555.0142", "+19195550142"):
        assert value not in stored
    assert runner.verify(view.run_id).ok
    # ... and an entitled reveal reads the values from there.
    revealed = revealed_events(runner, view.run_id, effects)
    audited = {e.detail["field"]: (e.detail["before"], e.detail["after"]) for e in revealed}
    assert audited == {
        "name.given": ("Rita", "Margarita"),
        "address": ("482 Maple Lane, Cary, NC", "482 MAPLE LN, CARY, NC"),
        "address.postalCode": ("27513", "27513-2207"),
        "telecom.phone": ("919.555.0142", "+19195550142"),
    }
    assert all(e.detail["target"] == "Patient/ehr-alvarez" for e in effects)
    assert not runner.pending()


# --- demographics: DOB held ---------------------------------------------------------------------


def dob_run(make_runner: RunnerFactory) -> tuple[Runner, RunView]:
    runner = runner_with(make_runner)
    view = start(runner, "cases/reconcile_dob_swap.json", ehr="ehr/reconcile_dob_swap.json")
    return runner, view


def test_dob_swap_is_held_and_not_written_without_a_decision(make_runner: RunnerFactory) -> None:
    runner, view = dob_run(make_runner)
    assert view.status == "paused"
    assert view.pending is not None
    request = view.pending.request
    assert (request.tool, request.rule_id, request.required_role) == (
        "reconcile_fix_demographic",
        "REC-3",
        "intake_coordinator",
    )
    assert request.args == {
        "patient_id": "ehr-osei",
        "field": "birthDate",
        "value": "1980-04-07",
        "before": "1980-07-04",  # the chart's value the decision is bound to
    }
    assert request.on_timeout == "escalate"
    found = items(view)
    assert (found["birthDate"]["risk"], found["birthDate"]["action"]) == ("high", "held")
    assert found["birthDate"]["kind"] == "dob_day_month_swap"
    assert found["birthDate"]["values"] == {"referral": "1980-04-07", "ehr": "1980-07-04"}
    # The low-risk phone fix ran; the DOB did not.
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-07-04"
    assert [e.tool for e in view.effects] == ["reconcile_fix_demographic"]
    facts = {f.label: f for f in request.packet.facts}
    assert facts["EHR chart now"].value == "1980-07-04"
    assert facts["EHR chart now"].source.resource == "Patient/ehr-osei"
    assert facts["Referral says"].value == "1980-04-07"
    assert facts["Referral says"].source.resource == "Patient/ref-osei"
    assert all(f.phi for f in facts.values() if f.label != "Chart found by")
    assert any(c.rule_id == "REC-3" and not c.passed for c in request.packet.checks)

    view = approve(runner, view)
    assert view.status == "completed", view.record.summary
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-04-07"
    assert items(view)["birthDate"]["outcome"] == "approved"
    assert items(view)["birthDate"]["action"] == "held"
    effect = [e for e in runner.audit(view.run_id) if e.action == "effect"][-1]
    assert effect.detail["decided"] == "approved"
    assert "1980" not in str(effect.detail)  # the birth dates stay in the effect ledger
    [effect] = revealed_events(runner, view.run_id, [effect])
    assert (effect.detail["before"], effect.detail["after"]) == ("1980-07-04", "1980-04-07")


def test_an_edit_beyond_the_grant_is_refused(make_runner: RunnerFactory) -> None:
    runner, view = dob_run(make_runner)
    assert view.pending is not None
    request = view.pending.request
    beyond = Edit(
        reviewer="casey",
        role="intake_coordinator",
        args_hash=request.args_hash,
        args={**request.args, "field": "gender", "value": "female"},
    )
    with pytest.raises(DecisionRefusedError) as refused:
        runner.decide(request.approval_id, beyond)
    assert refused.value.code == "edit_beyond_grant"
    assert runner.get(view.run_id).status == "paused"
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["gender"] == "male"
    # An edit within the grant (another date, same field) is applied as edited.
    within = Edit(
        reviewer="casey",
        role="intake_coordinator",
        args_hash=request.args_hash,
        args={**request.args, "value": "1980-07-05"},
    )
    view = runner.decide(request.approval_id, within).run
    assert view.status == "completed"
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-07-05"
    assert items(view)["birthDate"]["outcome"] == "edited"


def test_a_rejected_dob_fix_leaves_the_chart(make_runner: RunnerFactory) -> None:
    runner, view = dob_run(make_runner)
    view = reject(runner, view, "patient confirmed the EHR date")
    assert view.status == "completed"
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-07-04"
    assert items(view)["birthDate"]["outcome"] == "rejected"
    # The reviewer's words (which may quote PHI) stay in the decision record, not the finding.
    note = items(view)["birthDate"]["note"]
    assert "decision record" in note and "patient confirmed" not in note


# --- the planner cannot talk its way past the policy --------------------------------------------


def _pack_for(*names: str) -> PolicyPack:
    pack = load_policy_pack("default")
    policy = pack.agent_policy("reconciler")
    return pack.model_copy(update={"agents": {**pack.agents, **{n: policy for n in names}}})


def scripted(name: str, calls: list[ProposedCall]) -> AgentDefinition:
    """An agent that proposes ``calls`` once, then stops (a stand-in for a lying model)."""

    def planner(ctx: AgentContext, view: PlannerView) -> Plan:
        done = FinishSpec(summary="nothing left to do")
        return Plan(calls=calls) if view.turn == 0 else Plan(finish=done)

    return AgentDefinition(
        name=name,
        version="1",
        description="proposes fixed calls",
        tools=RECONCILER_TOOLS,
        planner=planner,
        packet=reconcile_packet,
    )


def run_scripted(
    make_runner: RunnerFactory,
    call: ProposedCall,
    *,
    case: str,
    requester: str,
    name: str = "liar",
    **world: str,
) -> tuple[Runner, RunView]:
    """Start an agent ``name`` that proposes ``call`` once (granted what the reconciler is) on
    ``case``, in a world seeded from ``world``'s files."""
    runner = runner_with(make_runner, scripted(name, [call]))
    view = runner.start(
        name, load(case), requester=requester, policy=_pack_for(name), world=world_of(**world)
    )
    return runner, view


def test_facts_rederive_risk_whatever_the_planner_claims(make_runner: RunnerFactory) -> None:
    call = ProposedCall(
        tool="reconcile_fix_demographic",
        args={"patient_id": "ehr-alvarez", "field": "name.given", "value": "Margaritta"},
        why="low risk: nickname",
    )
    runner, view = run_scripted(
        make_runner,
        call,
        case="cases/reconcile_low_risk.json",
        requester="sam",
        ehr="ehr/reconcile_low_risk.json",
    )
    # A value one letter off the rule's own normalised value is not low risk: held.
    assert view.status == "paused"
    assert view.pending is not None and view.pending.request.rule_id == "REC-3"
    assert world(runner, view).ehr.read("Patient", "ehr-alvarez")["name"][0]["given"] == ["Rita"]


def test_a_fix_to_a_chart_the_referral_does_not_match_is_denied(make_runner: RunnerFactory) -> None:
    call = ProposedCall(
        tool="reconcile_fix_demographic",
        args={"patient_id": "ehr-mia", "field": "telecom.phone", "value": "+19195550133"},
        why="phone formatting",
    )
    _, view = run_scripted(
        make_runner,
        call,
        case="cases/reconcile_twins.json",
        requester="sam",
        ehr="ehr/reconcile_twins.json",
    )
    assert view.status == "completed"
    assert [r.status for r in view.results] == ["denied"]
    assert "REC-1" in (view.results[0].reason or "")
    assert view.effects == []


# --- member id, NPI, family collision -----------------------------------------------------------


def test_member_id_change_is_held_then_applied(make_runner: RunnerFactory) -> None:
    runner = runner_with(make_runner)
    view = start(
        runner,
        "cases/reconcile_member_id.json",
        ehr="ehr/reconcile_member_id.json",
        payer="payer/reconcile_nguyen.json",
    )
    assert view.status == "paused"
    assert view.pending is not None
    request = view.pending.request
    assert (request.tool, request.rule_id) == ("reconcile_fix_member_id", "REC-3")
    assert request.packet.recommendation == "approve"
    member = items(view)["identifier.member_id"]
    assert (member["risk"], member["action"], member["kind"]) == (
        "high",
        "held",
        "member_id_differs",
    )
    assert member["values"] == {
        "referral": "ACM200300400",
        "ehr": "ACM100900800",
        "payer": "ACM200300400",
    }
    view = approve(runner, view, reviewer="jordan")
    assert view.status == "completed"
    coverage = world(runner, view).ehr.read("Coverage", "ehr-cov-nguyen")
    assert coverage["subscriberId"] == "ACM200300400"
    assert view.findings["reconcile"]["verified"] is True


def test_invalid_npi_is_reported_high_from_one_record(make_runner: RunnerFactory) -> None:
    runner = runner_with(make_runner)
    view = start(runner, "cases/reconcile_npi_invalid.json", ehr="ehr/reconcile_npi_invalid.json")
    assert view.status == "completed"
    report = run_report(view)
    assert [m.model_dump() for m in report.findings.mismatches] == [
        {
            "field": "practitioner.npi",
            "values": {"referral": "1234567890"},
            "risk": "high",
            "action": "held",
        }
    ]
    assert view.effects == []


def test_twins_hold_the_link_and_a_rejection_changes_nothing(make_runner: RunnerFactory) -> None:
    runner = runner_with(make_runner)
    view = start(runner, "cases/reconcile_twins.json", ehr="ehr/reconcile_twins.json")
    assert view.status == "paused"
    assert view.pending is not None
    request = view.pending.request
    assert (request.tool, request.rule_id, request.args) == (
        "reconcile_link_patient",
        "REC-4",
        {"patient_id": "ehr-ava"},
    )
    shown = {f.source.resource for f in request.packet.facts}
    assert {"Patient/ehr-ava", "Patient/ehr-mia", "Patient/ref-ava"} <= shown
    identity = items(view)["identity"]
    assert "Mia Thompson, 2015-09-03" in identity["values"].values()
    assert (identity["risk"], identity["action"]) == ("high", "held")
    # Nothing is written to either chart while the identity is open.
    assert items(view)["telecom.phone"]["outcome"] == "identity_unconfirmed"
    assert items(view)["telecom.phone"]["action"] == "held"
    view = reject(runner, view, "cannot tell the twins apart from this referral")
    assert view.status == "completed"
    assert view.effects == []
    assert items(view)["identity"]["outcome"] == "rejected"
    ehr = world(runner, view).ehr
    assert ehr.read("Patient", "ehr-ava")["telecom"][0]["value"] == "919-555-0133"


def test_a_referral_with_no_chart_is_reported(make_runner: RunnerFactory) -> None:
    runner = runner_with(make_runner)
    view = start(runner, "cases/reconcile_low_risk.json", ehr="ehr/reconcile_twins.json")
    assert view.status == "completed"
    assert "no EHR chart matches" in view.record.summary
    identity = items(view)["identity"]
    assert (identity["risk"], identity["action"], identity["kind"]) == ("high", "held", "no_match")
    assert identity["values"] == {"referral": "Margarita Alvarez, 1972-06-15", "ehr": None}
    assert view.effects == []


# --- three-way match ----------------------------------------------------------------------------


def billing(
    make_runner: RunnerFactory, erp: str, policy: PolicyPack | None = None
) -> tuple[Runner, RunView]:
    runner = runner_with(make_runner)
    view = runner.start(
        "reconciler",
        load("cases/billing_batch.json"),
        requester="ap-batch",
        policy=policy,
        world=world_of(erp=erp),
    )
    return runner, view


def test_clean_invoice_is_approved_without_a_person(make_runner: RunnerFactory) -> None:
    runner, view = billing(make_runner, "erp/billing_clean.json")
    assert view.status == "completed"
    assert world(runner, view).erp.invoice("INV-7001").status == "approved"  # type: ignore[union-attr]
    assert view.findings["invoices"][0]["outcome"] == "approved"
    assert view.findings["invoice_exceptions"] == []
    assert run_report(view).findings.mismatches == []
    audited = [e for e in runner.audit(view.run_id) if e.action == "effect"]
    assert [(e.detail["invoice"], e.detail["after"]) for e in audited] == [("INV-7001", "approved")]


def test_over_billing_is_held_for_billing_and_approval_pays(make_runner: RunnerFactory) -> None:
    runner, view = billing(make_runner, "erp/billing_over_billing.json")
    assert view.status == "paused"
    assert view.pending is not None
    request = view.pending.request
    assert (request.tool, request.rule_id, request.required_role) == (
        "reconcile_approve_invoice",
        "BILL-1",
        "billing",
    )
    failed = [c for c in request.packet.checks if not c.passed and c.rule_id is None]
    assert [c.name for c in failed] == ["over_billing (line 1, KNEE-IMP)"]
    assert "2450.00" in failed[0].detail and "2600.00" in failed[0].detail
    exceptions = view.findings["invoice_exceptions"]
    assert [(e["invoice_number"], e["kind"]) for e in exceptions] == [("INV-7102", "over_billing")]
    with pytest.raises(DecisionRefusedError):
        approve(runner, view)  # an intake coordinator may not decide a billing hold
    view = approve(runner, view, reviewer="morgan", role="billing")
    assert view.status == "completed"
    assert world(runner, view).erp.invoice("INV-7102").status == "approved"  # type: ignore[union-attr]
    assert view.findings["invoices"][0]["outcome"] == "approved_by_billing"


def test_rejected_over_billing_goes_on_hold_with_the_reason(make_runner: RunnerFactory) -> None:
    runner, view = billing(make_runner, "erp/billing_over_billing.json")
    view = reject(runner, view, "ask for a credit note", reviewer="billie", role="billing")
    assert view.status == "completed"
    invoice = world(runner, view).erp.invoice("INV-7102")
    assert invoice is not None and invoice.status == "on_hold"
    assert "ask for a credit note" in (invoice.hold_reason or "")
    assert "over_billing" in (invoice.hold_reason or "")
    assert [e.tool for e in view.effects] == ["reconcile_hold_invoice"]


def test_duplicate_invoice_is_held_with_a_reject_recommendation(make_runner: RunnerFactory) -> None:
    runner, view = billing(make_runner, "erp/billing_duplicate.json")
    assert view.status == "paused"
    assert view.pending is not None
    packet = view.pending.request.packet
    assert packet.recommendation == "reject"
    exceptions = view.findings["invoice_exceptions"]
    assert [(e["kind"], e["expected"]) for e in exceptions] == [("duplicate_invoice", "INV-7003")]
    assert "INV-7003" in packet.checks[0].detail
    assert "mismatches" not in view.findings
    assert world(runner, view).erp.invoice("INV7003").status == "received"  # type: ignore[union-attr]


def test_tolerances_come_from_the_pack(make_runner: RunnerFactory) -> None:
    pack = load_policy_pack("default")
    strict = pack.model_copy(
        update={"settings": {"reconciler": {"tolerances": {"price_pct": "0.5", "price_abs": "0"}}}}
    )
    _, view = billing(make_runner, "erp/billing_clean.json", policy=strict)
    # 12.50 against 12.40 is 0.8%: within the default 2%, beyond this pack's 0.5%.
    assert view.status == "paused"
    assert view.pending is not None and view.pending.request.rule_id == "BILL-1"
    assert view.pending.request.args["price_pct"] == "0.5"


def test_bad_settings_fail_the_run_clearly(make_runner: RunnerFactory) -> None:
    pack = load_policy_pack("default")
    bad = pack.model_copy(update={"settings": {"reconciler": {"tolerances": {"price_pct": "-1"}}}})
    _, view = billing(make_runner, "erp/billing_clean.json", policy=bad)
    assert view.status == "failed"
    assert "settings.reconciler is invalid" in view.record.summary
    assert "tolerances.price_pct" in view.record.summary


def test_a_loose_tolerance_from_the_planner_is_held(make_runner: RunnerFactory) -> None:
    call = ProposedCall(
        tool="reconcile_approve_invoice",
        args={"invoice_number": "INV-7102", "price_pct": "50", "price_abs": "0"},
        why="within tolerance",
    )
    _, view = run_scripted(
        make_runner,
        call,
        case="cases/billing_batch.json",
        requester="ap-batch",
        name="loose",
        erp="erp/billing_over_billing.json",
    )
    assert view.status == "paused"
    assert view.pending is not None and view.pending.request.rule_id == "BILL-2"


# --- composing the planner (referral intake) ----------------------------------------------------


def _no_reads(tool: Any, args: Any) -> Any:
    raise AssertionError(f"the planner read {tool.name}: it should plan from its view alone")


def _ctx(case: dict[str, Any]) -> AgentContext:
    return AgentContext(
        run_id="r-test",
        agent="reconciler",
        now=datetime(2026, 3, 2, tzinfo=UTC),
        requester="sam",
        pack=load_policy_pack("default"),
        case=case,
        read=_no_reads,
    )  # fmt: skip


def test_plan_reconcile_keeps_other_memory_and_findings() -> None:
    view = PlannerView(
        results=[],
        events=[],
        findings={"missing_documents": [{"code": "11506-3", "display": "Progress note"}]},
        memory={"intake": {"step": "documents"}},
        turn=3,
    )
    plan = plan_reconcile(_ctx(load("cases/reconcile_low_risk.json")), view)
    assert [c.tool for c in plan.calls] == ["reconcile_find_patient"]
    assert plan.memory is not None and plan.memory["intake"] == {"step": "documents"}
    assert set(plan.memory) == {"intake", "reconcile"}
    assert plan.findings is not None
    assert plan.findings["missing_documents"] == view.findings["missing_documents"]
    assert all(name.startswith("reconcile_") for name in RECONCILER_TOOLS)


def test_a_composing_planner_keeps_its_state_across_the_whole_run(
    make_runner: RunnerFactory,
) -> None:
    def composed(ctx: AgentContext, view: PlannerView) -> Plan:
        memory = dict(view.memory)
        findings = dict(view.findings)
        if view.turn == 0:
            memory["intake"] = {"owner": "intake"}
            findings["intake_note"] = "kept"
        elif memory.get("intake") != {"owner": "intake"} or "intake_note" not in findings:
            findings["lost_state"] = True
        inner = plan_reconcile(ctx, PlannerView(
            results=view.results, events=view.events, findings=findings, memory=memory,
            turn=view.turn,
        ))  # fmt: skip
        return inner

    agent = AgentDefinition(
        name="composed",
        version="1",
        description="intake stand-in",
        tools=RECONCILER_TOOLS,
        planner=composed,
        packet=reconcile_packet,
    )
    runner = runner_with(make_runner, agent)
    view = runner.start(
        "composed",
        load("cases/reconcile_low_risk.json"),
        requester="sam",
        policy=_pack_for("composed"),
        world=world_of(ehr="ehr/reconcile_low_risk.json", payer="payer/reconcile_alvarez.json"),
    )
    assert view.status == "completed"
    assert view.findings["intake_note"] == "kept"
    assert "lost_state" not in view.findings
    assert len(view.findings["mismatches"]) == 4


def test_registry_ships_the_reconciler() -> None:
    from carebound.agents import registry

    assert registry()["reconciler"] is RECONCILER


# --- the public Synthea identity variants ------------------------------------------------------


def _synthea_patient(pid: str, facts: dict[str, Any], birth: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MRN, "value": "MRN-SYNTHEA-1"}],
        "name": [{"use": "official", "family": facts["familyName"],
                  "given": facts["givenName"].split()}],
        "telecom": [{"system": "phone", "value": facts["phone"], "use": "home"}],
        "gender": {"F": "female", "M": "male"}[gender],
        "birthDate": birth,
        "address": [{"use": "home", "line": [ln.strip() for ln in facts["addressLines"]],
                     "city": facts["city"], "state": facts["state"],
                     "postalCode": facts["zipCode"]}],
    }  # fmt: skip


def _bundle(bid: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": bid,
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _synthea_runs(public_fixtures: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    """(variantId, referral bundle with the variant, EHR bundle with the seed, DOB differs)."""
    data = json.loads((public_fixtures / "synthea" / "test_records.json").read_text())
    runs = []
    for person in data["records"]:
        for seed in person["seeds"]:
            ehr = _synthea_patient("ehr-seed", seed, person["dateOfBirth"], person["gender"])
            for variant in seed["variants"]:
                referral_patient = _synthea_patient(
                    "ref-variant", variant, variant["dateOfBirth"], variant["gender"]
                )
                service_request = {
                    "resourceType": "ServiceRequest",
                    "id": "sr-variant",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": "Patient/ref-variant"},
                }
                runs.append((
                    variant["variantId"],
                    _bundle("referral", [service_request, referral_patient]),
                    _bundle("ehr", [ehr]),
                    variant["dateOfBirth"] != person["dateOfBirth"],
                ))  # fmt: skip
    return runs


def test_synthea_variants_every_dob_difference_is_held(
    public_fixtures: Path, make_runner: RunnerFactory
) -> None:
    runs = _synthea_runs(public_fixtures)
    assert len(runs) >= 4 and any(differs for *_, differs in runs)
    runner = runner_with(make_runner)
    for variant_id, case, ehr, dob_differs in runs:
        view = runner.start(
            "reconciler", case, requester="sam", world=WorldSpec.from_bundles(ehr, None)
        )
        seed_dob = ehr["entry"][0]["resource"]["birthDate"]
        found = items(view)
        if not dob_differs:
            assert "birthDate" not in found, variant_id
        else:
            assert (found["birthDate"]["risk"], found["birthDate"]["action"]) == ("high", "held")
        # Decide nothing but rejections: a DOB change must never reach the chart.
        for _ in range(5):
            if view.status != "paused":
                break
            assert view.pending is not None
            if view.pending.request.args.get("field") == "birthDate":
                assert dob_differs, variant_id
                assert view.pending.request.rule_id == "REC-3"
            view = reject(runner, view, "not confirmed")
        assert view.status == "completed", variant_id
        chart = world(runner, view).ehr.read("Patient", "ehr-seed")
        assert chart["birthDate"] == seed_dob, variant_id
        written = [r.args.get("field") for r in view.results if r.status == "executed"]
        assert "birthDate" not in written, variant_id
        for m in run_report(view).findings.mismatches:
            assert not (m.field == "birthDate" and m.action == "auto_fixed"), variant_id
