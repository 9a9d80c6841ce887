"""Redis stops mid-run: every call fails with a clear StoreUnavailableError; once Redis is back
(same port, same AOF data directory) the run resumes and nothing is lost or done twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from carebound import AgentDefinition, Approve, Runner, StoreUnavailableError, VirtualClock
from carebound._agent import request_match
from carebound.agents.demo import DEMO, NOTE_CODE
from carebound.tools import ToolContext
from carebound.tools.connectors import WorldSpec
from carebound.tools.connectors.simulated import World
from tests.servers import ServerProcess, own_server

SEND = "send_document_request"


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    """A dedicated Redis with AOF on, in a temporary data directory, that tests may stop."""
    with own_server(appendonly=True) as proc:
        yield proc


def approve(runner: Runner, approval_id: str) -> None:
    """casey approves the held fax."""
    args_hash = runner.approval(approval_id).request.args_hash
    runner.decide(
        approval_id,
        Approve(reviewer="casey", role="intake_coordinator", args_hash=args_hash),
    )


def assert_clean_end(runner: Runner, run_id: str) -> None:
    """Completed, one fax at the connector, ledger done, audit chain intact."""
    view = runner.get(run_id)
    assert view.status == "completed", view.record
    assert view.record.summary == "progress note received"
    outreach = World.attach(runner.client, run_id, prefix=runner.prefix).outreach
    assert [e.action for e in outreach.effects()] == ["send"]
    assert [e.status for e in view.effects] == ["done"]
    assert runner.verify(run_id).ok
    actions = [e.action for e in runner.audit(run_id)]
    assert actions.count("decision") == 1 and actions.count("effect") == 1


def reply(runner: Runner, run_id: str) -> None:
    """The office faxes the note back."""
    woken = runner.deliver(
        request_match(f"{run_id}:{NOTE_CODE}"), {"text": "Progress note."}, event_id="reply-1"
    )
    assert woken == [run_id]


def test_store_stopped_while_parked(
    server: ServerProcess, demo_case: dict[str, Any], demo_world: WorldSpec
) -> None:
    client = redis.Redis.from_url(server.url)
    runner = Runner(client, prefix="outage", clock=VirtualClock(), agents={DEMO.name: DEMO})
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    approval_id = view.pending.request.approval_id

    server.stop()
    calls: dict[str, Callable[[], object]] = {
        "decide": lambda: approve(runner, approval_id),
        "get": lambda: runner.get(view.run_id),
        "start": lambda: runner.start("demo", demo_case, requester="sam", world=demo_world),
        "recover": runner.recover,
        "sweep": runner.sweep,
    }
    for name, call in calls.items():
        with pytest.raises(StoreUnavailableError) as caught:
            call()
        message = str(caught.value)
        assert "run store" in message and "CAREBOUND_REDIS_URL" in message, (name, message)
        assert isinstance(caught.value.__cause__, redis.ConnectionError)

    server.start()  # same port, same data directory: the AOF brings everything back
    assert runner.get(view.run_id).status == "paused"
    approve(runner, approval_id)
    assert runner.get(view.run_id).status == "waiting"
    reply(runner, view.run_id)
    assert_clean_end(runner, view.run_id)
    assert [r.run_id for r in runner.list_runs()] == [view.run_id]  # the refused start left none


def test_store_stopped_during_the_effect(
    server: ServerProcess, demo_case: dict[str, Any], demo_world: WorldSpec
) -> None:
    """The store goes away after the ledger reserved the fax's key, before the connector call:
    the decision fails loudly, and after the restart recover() sends the fax exactly once."""
    send = DEMO.tools[SEND]
    stops: list[str] = []

    def send_after_outage(ctx: ToolContext, args: Any) -> Any:
        if not stops:
            stops.append(ctx.run_id)
            server.stop()
        return send.run(ctx, args)

    agent: AgentDefinition = dataclasses.replace(
        DEMO, tools={**DEMO.tools, SEND: dataclasses.replace(send, run=send_after_outage)}
    )
    client = redis.Redis.from_url(server.url)
    runner = Runner(client, prefix="outage", clock=VirtualClock(), agents={DEMO.name: agent})
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None

    with pytest.raises(StoreUnavailableError, match="during decide"):
        approve(runner, view.pending.request.approval_id)
    assert stops == [view.run_id]

    server.start()
    # Left mid-drive: the decision is stored, the fax's key reserved, the run not settled.
    assert runner.approval(view.pending.request.approval_id).status == "approved"
    assert [e.status for e in runner.ledger.entries(view.run_id)] == ["reserved"]
    assert runner.recover() == [view.run_id]
    assert runner.get(view.run_id).status == "waiting"
    reply(runner, view.run_id)
    assert_clean_end(runner, view.run_id)
    outreach = World.attach(client, view.run_id, prefix="outage").outreach
    assert outreach.attempts() == 1  # the first attempt never reached the connector
