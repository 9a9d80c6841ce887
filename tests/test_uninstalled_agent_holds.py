"""A run of an agent this process does not have (a service's agent, uninstalled here or never
installed): every decision on its hold (the deadline sweep's included), a cancel and a PHI view
are refused before anything is stored, so the hold stays as it was, in its inbox, to be decided
where the agent is; the run can still be read, and a recover leaves it for a process with the
agent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import yaml

from carebound import (
    Approve,
    DecisionRefusedError,
    Escalate,
    Reject,
    Runner,
    RunStateError,
    VirtualClock,
)
from carebound.agents.demo import DEMO
from carebound.approvals import ApprovalRequest
from carebound.guardrails import PolicyPack, load_policy_pack
from carebound.web._problems import problem_for
from tests.conftest import PROJECT
from tests.test_web import Web, decide, sign_in

BOT = dataclasses.replace(DEMO, name="svc_fax_bot", description="a service's fax bot")


@pytest.fixture
def pack(tmp_path: Any) -> PolicyPack:
    """The default pack, with the service's agent granted what the demo agent may do."""
    raw = yaml.safe_load((PROJECT / "guardrails" / "packs" / "default.yaml").read_text())
    raw["agents"][BOT.name] = raw["agents"]["demo"]
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_policy_pack(path)


@dataclasses.dataclass
class Parked:
    """A hold of the service's agent, and two Runners on its store."""

    service: Runner
    """Has the service's agent (its package is installed)."""
    hold: ApprovalRequest
    elsewhere: Runner
    """Lacks it: a process without the service's package."""


@pytest.fixture
def parked(
    make_runner: Callable[..., Runner], demo_case: Any, demo_world: Any, pack: PolicyPack
) -> Parked:
    """A run of the service's agent, paused on its fax hold."""
    service = make_runner(agents={BOT.name: BOT}, policy=pack)
    hold = service.start(BOT.name, demo_case, requester="sam", world=demo_world).pending.request
    return Parked(service=service, hold=hold, elsewhere=make_runner(policy=pack))


def _decisions(args_hash: str) -> list[Any]:
    return [
        Escalate(
            reviewer="casey", role="intake_coordinator", args_hash=args_hash, to_role="supervisor"
        ),
        Approve(reviewer="casey", role="intake_coordinator", args_hash=args_hash),
        Reject(reviewer="casey", role="intake_coordinator", args_hash=args_hash, reason="no"),
    ]


def test_every_decision_on_a_hold_of_an_agent_not_installed_is_refused_and_changes_nothing(
    parked: Parked,
) -> None:
    service, hold, elsewhere = parked.service, parked.hold, parked.elsewhere
    trail = len(elsewhere.audit(hold.run_id))

    for decision in _decisions(hold.args_hash):
        with pytest.raises(DecisionRefusedError) as refused:
            elsewhere.decide(hold.approval_id, decision)
        assert refused.value.code == "agent_not_installed"
        assert "unknown agent 'svc_fax_bot'" in refused.value.message
        assert "carebound.agents" in (refused.value.hint or "")
        assert problem_for(refused.value).status == 409  # the API's answer: not a 404

    # An escalation used to be stored (the hold's role changed) with no audit event and
    # without moving the hold to the new role's inbox: it was in nobody's inbox.
    view = elsewhere.approval(hold.approval_id)
    assert (view.status, view.required_role) == ("pending", "intake_coordinator")
    assert [v.request.approval_id for v in elsewhere.pending(role="intake_coordinator")] == [
        hold.approval_id
    ]
    assert len(elsewhere.audit(hold.run_id)) == trail
    decided = service.decide(hold.approval_id, _decisions(hold.args_hash)[1])
    assert decided.outcome == "decided" and decided.run.status == "waiting"


def test_the_deadline_sweep_of_a_process_without_the_agent_leaves_its_hold_alone(
    make_runner: Callable[..., Runner], demo_case: Any, demo_world: Any, pack: PolicyPack
) -> None:
    clock = VirtualClock()
    service = make_runner(agents={BOT.name: BOT}, policy=pack, clock=clock)
    hold = service.start(BOT.name, demo_case, requester="sam", world=demo_world).pending.request
    clock.advance(timedelta(days=3))  # past the hold's deadline: the pack escalates it
    elsewhere = make_runner(policy=pack, clock=clock)

    elsewhere.sweep()

    view = elsewhere.approval(hold.approval_id)
    assert (view.status, view.required_role) == ("pending", "intake_coordinator")
    service.sweep()  # where the agent is installed, the escalation is made
    assert service.approval(hold.approval_id).required_role == "supervisor"
    assert [v.request.approval_id for v in service.pending(role="supervisor")] == [hold.approval_id]


def test_cancelling_a_run_of_an_agent_not_installed_is_refused_and_changes_nothing(
    parked: Parked,
) -> None:
    service, hold, elsewhere = parked.service, parked.hold, parked.elsewhere

    with pytest.raises(RunStateError, match=r"unknown agent 'svc_fax_bot' \(not installed"):
        elsewhere.cancel(hold.run_id, by="ops", reason="tidy up")

    # The hold used to be withdrawn before the cancel failed: the run stayed paused on a hold
    # nobody could decide any more.
    assert elsewhere.approval(hold.approval_id).status == "pending"
    run = elsewhere.get(hold.run_id)
    assert run.status == "paused" and run.record.pending_approval == hold.approval_id
    assert service.cancel(hold.run_id, by="ops", reason="tidy up").status == "cancelled"


def test_the_web_and_the_api_show_a_run_of_an_agent_not_installed_and_refuse_its_decision(
    make_web: Callable[..., Web], parked: Parked
) -> None:
    hold = parked.hold
    web = make_web()  # its Runner lacks the service's agent
    api = web.api(name="casey-app", reviewer="casey")

    # Reading a run needed its agent's graph: the run, its packet page and a decision's answer
    # all answered 404 'unknown agent' for a run and a hold that exist.
    run = api.get(f"/api/runs/{hold.run_id}")
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "paused"
    assert web.runner.get(hold.run_id).pending is not None
    browser = web.browser()
    csrf = sign_in(browser, "casey")
    page = browser.get(f"/approvals/{hold.approval_id}")
    assert page.status_code == 200, page.text
    answer = api.post(
        f"/api/approvals/{hold.approval_id}/decision",
        json={"kind": "approve", "role": "intake_coordinator", "args_hash": hold.args_hash},
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "agent_not_installed"
    assert decide(browser, hold.approval_id, csrf, kind="approve", role="intake_coordinator",
                  args_hash=hold.args_hash).status_code != 500  # fmt: skip
    assert web.runner.approval(hold.approval_id).status == "pending"


def test_a_process_without_the_agent_leaves_its_marked_run_alone_for_one_that_has_it(
    make_runner: Callable[..., Runner], parked: Parked, pack: PolicyPack
) -> None:
    service, hold, elsewhere = parked.service, parked.hold, parked.elsewhere
    queued = make_runner(agents={BOT.name: BOT}, policy=pack, drive="queue")
    decision = _decisions(hold.args_hash)[1]
    assert queued.decide(hold.approval_id, decision).outcome == "decided"  # the run is marked

    for _ in range(4):
        report = elsewhere.recover_runs()
        assert report.left == [hold.run_id] and report.failed == []

    # Each recover used to count a failed drive (NotFoundError: unknown agent), and the third
    # quarantined the run although a process with the agent could drive it.
    run = elsewhere.get(hold.run_id)
    assert run.status != "quarantined" and run.record.failures == 0
    assert service.recover_runs().recovered == [hold.run_id]
    assert service.get(hold.run_id).status == "waiting"


def test_revealing_the_phi_of_a_run_of_an_agent_not_installed_is_refused_as_such(
    parked: Parked,
) -> None:
    service, hold, elsewhere = parked.service, parked.hold, parked.elsewhere
    trail = len(elsewhere.audit(hold.run_id))

    # Both used to answer NotFoundError 'unknown agent' (exit 5, HTTP 404) for a hold that exists.
    for reveal in (
        lambda: elsewhere.reveal(hold.approval_id, viewer="casey"),
        lambda: elsewhere.reveal_run(hold.run_id, viewer="casey", roles=["intake_coordinator"]),
    ):
        with pytest.raises(DecisionRefusedError) as refused:
            reveal()
        assert refused.value.code == "agent_not_installed"
        assert "PHI is not shown here" in refused.value.message
    assert len(elsewhere.audit(hold.run_id)) == trail
    assert service.reveal(hold.approval_id, viewer="casey").request.args["to"] != "•••"
