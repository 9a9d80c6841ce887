"""A crash between parking a hold and the checkpoint that records it.

The gate parks a hold (the reviewer's inbox shows it) and the process dies before the step's
checkpoint is durable: the run's newest checkpoint is the one the gate step runs from. The
recovering drive judges the same call again; when the world changed meanwhile the policy may
now allow or deny it, and the first hold must not stay in the inbox as an orphan a reviewer
could decide with no effect.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import Approve, CareboundError, Runner, VirtualClock, load_policy_pack
from carebound.agents.demo import DEMO
from carebound.approvals import ApprovalStore
from carebound.guardrails import PolicyPack
from carebound.tools import ToolContext

SEND = "send_document_request"


class _Crash(BaseException):
    """Stands for the process dying right after the hold was parked (nothing catches it)."""


def _pack(tmp_path: Path) -> PolicyPack:
    """The default pack, whose demo fax rule (OUT-2) holds a flagged fax only, and which
    refuses a blocked one."""
    import guardrails

    text = (Path(guardrails.__file__).parent / "packs" / "default.yaml").read_text()
    rule = "when: {tool: send_document_request}\n    decision: hold"
    assert rule in text
    text = text.replace(
        rule,
        "when: {tool: send_document_request, facts: {flagged: true}}\n    decision: hold",
    )
    deny = (
        "  - id: OUT-9\n    text: A blocked fax is refused.\n"
        "    when: {tool: send_document_request, facts: {blocked: true}}\n"
        "    decision: deny\n"
    )
    text = text.replace("  - id: OUT-2\n", deny + "  - id: OUT-2\n")
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    return load_policy_pack(path)


def _agent(mode: list[str]) -> Any:
    """The demo agent whose fax the pack holds (``mode[0] == "hold"``), allows (``"allow"``)
    or refuses (``"deny"``): a fact of the world at the time the gate judges it."""
    send = DEMO.tools[SEND]
    base_facts = send.facts

    def facts(ctx: ToolContext, args: Any) -> dict[str, Any]:
        found = dict(base_facts(ctx, args)) if base_facts is not None else {}
        return {**found, "flagged": mode[0] == "hold", "blocked": mode[0] == "deny"}

    tools = {**DEMO.tools, SEND: dataclasses.replace(send, facts=facts)}
    return dataclasses.replace(DEMO, tools=tools)


def _crash_after_park(runner: Runner) -> None:
    """Make ``runner``'s hold store die right after it parked a hold."""
    park = runner.approvals.park

    def park_then_die(request: Any) -> bool:
        park(request)
        raise _Crash

    runner.approvals.park = park_then_die  # type: ignore[method-assign]


def _crashed_start(
    client: redis.Redis, prefix: str, agents: Any, tmp_path: Path, case: Any, world: Any
) -> Any:
    """The hold of a start whose process died right after it parked it (it reached the
    inbox before the process died)."""
    first = Runner(client, prefix=prefix, clock=VirtualClock(), agents=agents)
    _crash_after_park(first)
    with pytest.raises(_Crash):
        first.start(DEMO.name, case, requester="sam", world=world, policy=_pack(tmp_path))
    [held] = first.pending()
    return held


@pytest.mark.parametrize("now", ["allow", "deny"])
def test_a_hold_parked_before_a_crash_leaves_the_inbox_when_the_replay_does_not_hold(
    redis_url: str, key_prefix: str, tmp_path: Path, demo_case: Any, demo_world: Any, now: str
) -> None:
    mode = ["hold"]
    agents = {DEMO.name: _agent(mode)}
    client = redis.Redis.from_url(redis_url)
    orphan = _crashed_start(client, key_prefix, agents, tmp_path, demo_case, demo_world)
    run_id = orphan.request.run_id

    mode[0] = now  # the world changed before the run was recovered
    second = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents)
    second.recover()
    after = second.get(run_id)
    assert after.status != "running"
    sent = [r.status for r in after.results if r.tool == SEND]
    assert sent == (["executed"] if now == "allow" else ["denied"])
    # the replay did not hold the call: no hold of this run waits in the inbox
    assert [v.request.approval_id for v in second.pending()] == []
    stored = ApprovalStore(client, prefix=key_prefix).get(orphan.request.approval_id)
    assert stored is None or stored.status != "pending"
    # a reviewer who still has the old link is told the hold is gone, not that it worked
    with pytest.raises(CareboundError):
        second.decide(
            orphan.request.approval_id,
            Approve(
                reviewer="casey", role="intake_coordinator", args_hash=orphan.request.args_hash
            ),
        )
    assert second.verify(run_id).ok
    client.close()


def test_a_replay_that_holds_the_call_again_keeps_the_one_hold(
    redis_url: str, key_prefix: str, tmp_path: Path, demo_case: Any, demo_world: Any
) -> None:
    agents = {DEMO.name: _agent(["hold"])}
    client = redis.Redis.from_url(redis_url)
    held = _crashed_start(client, key_prefix, agents, tmp_path, demo_case, demo_world)

    second = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents)
    second.recover()
    after = second.get(held.request.run_id)
    assert after.status == "paused"
    assert after.pending is not None
    assert after.pending.request.approval_id == held.request.approval_id
    assert [v.request.approval_id for v in second.pending()] == [held.request.approval_id]
    client.close()


def test_a_withdrawn_hold_parked_again_is_pending_again(
    redis_url: str, key_prefix: str, tmp_path: Path, demo_case: Any, demo_world: Any
) -> None:
    """A process that withdrew a hold and died before storing its step replays the step
    again; if the call is held this time, the same hold is parked again and waits for a
    reviewer (the run would otherwise wait on a hold nobody can decide)."""
    client = redis.Redis.from_url(redis_url)
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
    view = runner.start(DEMO.name, demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request
    store = ApprovalStore(client, prefix=key_prefix)
    now = runner.clock.now()

    assert store.withdraw(request.approval_id, now=now)
    assert runner.pending() == []
    withdrawn = store.get(request.approval_id)
    assert withdrawn is not None and withdrawn.status == "withdrawn"
    assert not store.withdraw(request.approval_id, now=now)  # no longer pending: nothing to do

    assert store.park(request)  # the replay held the call after all
    assert [v.request.approval_id for v in runner.pending()] == [request.approval_id]
    decided = runner.decide(
        request.approval_id,
        Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash),
    )
    assert decided.run.status == "waiting"
    client.close()


@pytest.mark.parametrize("now", ["allow", "hold"])
def test_a_reviewers_rejection_of_a_hold_parked_before_a_crash_stands_after_recovery(
    redis_url: str, key_prefix: str, tmp_path: Path, demo_case: Any, demo_world: Any, now: str
) -> None:
    """A reviewer rejects the hold before the crashed run is recovered; the world changed so
    the replayed step's policy would now allow the call (or still holds it). The rejection
    stands: the call is not made, the agent is told the reviewer's no, and the hold keeps the
    reviewer's decision."""
    from carebound import Reject

    mode = ["hold"]
    agents = {DEMO.name: _agent(mode)}
    client = redis.Redis.from_url(redis_url)
    orphan = _crashed_start(client, key_prefix, agents, tmp_path, demo_case, demo_world)
    run_id, approval_id = orphan.request.run_id, orphan.request.approval_id

    # the reviewer's web process stores the decision; a worker would drive the run on
    web = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents, drive="queue")
    rejection = Reject(
        reviewer="casey", role="intake_coordinator", args_hash=orphan.request.args_hash,
        reason="the office asked us not to fax",
    )  # fmt: skip
    web.decide(approval_id, rejection)
    mode[0] = now  # the world changed before the run was recovered
    second = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents)
    second.recover()
    after = second.get(run_id)
    sent = [r for r in after.results if r.tool == SEND]
    assert [r.status for r in sent] == ["rejected"]
    assert "the office asked us not to fax" in (sent[0].reason or "")
    stored = ApprovalStore(client, prefix=key_prefix).get(approval_id)
    assert stored is not None and stored.status == "rejected"
    assert second.pending() == []
    decisions = [e.detail for e in second.audit(run_id) if e.action == "decision"]
    assert [(d["approval_id"], d["decision"]) for d in decisions] == [(approval_id, "reject")]
    assert not [
        e for e in second.audit(run_id) if e.action == "effect" and e.detail.get("tool") == SEND
    ]
    assert second.verify(run_id).ok
    client.close()


def test_a_reviewers_edit_of_a_hold_parked_before_a_crash_is_what_the_recovery_sends(
    redis_url: str, key_prefix: str, tmp_path: Path, demo_case: Any, demo_world: Any
) -> None:
    """A reviewer edits the held fax's note before the crashed run is recovered, and the
    policy would now let the call run as the agent proposed it: the fax sent is the edited
    one (before, the replay sent the agent's proposal and the edit was lost)."""
    from carebound import Edit

    mode = ["hold"]
    agents = {DEMO.name: _agent(mode)}
    client = redis.Redis.from_url(redis_url)
    orphan = _crashed_start(client, key_prefix, agents, tmp_path, demo_case, demo_world)
    request = orphan.request
    web = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents, drive="queue")
    note = "Please fax the progress note of the last visit."
    edit = Edit(
        reviewer="casey", role="intake_coordinator", args_hash=request.args_hash,
        args={**request.args, "note": note},
    )  # fmt: skip
    web.decide(request.approval_id, edit)
    mode[0] = "allow"
    second = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents=agents)
    second.recover()
    [sent] = [r for r in second.get(request.run_id).results if r.tool == SEND]
    assert sent.status == "executed"
    assert sent.args["note"] == note
    client.close()
