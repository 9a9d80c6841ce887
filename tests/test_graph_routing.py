"""The graph's nodes route themselves (``Command(goto=...)``, carebound.engine.graph._routed)
instead of LangGraph conditional edges, which read every channel back after each step to route
it. Swapping one for the other changes nothing stored: a run driven by each graph parks with
the same checkpoint (channels, versions, what each node has seen, pending writes), the same
next step and the same audit trail."""

from __future__ import annotations

import json
import re
from typing import Any

import redis
from langgraph.channels import LastValue
from langgraph.graph import END, START, StateGraph

from carebound import Approve, Runner, VirtualClock
from carebound.engine.graph import _Nodes
from carebound.engine.run_state import RunState
from tests.intake_scenario import intake_case_and_world

NODES = ("plan", "gate", "hold", "execute", "wait")
TARGETS = ("hold", "execute", "gate", "wait", "plan", END)


def _conditional_edges_graph(runner: Runner, agent: str) -> Any:
    """The graph as it was built before: the same nodes, routed by conditional edges."""
    core = runner._core  # private: the test swaps the compiled graph of one agent
    nodes = _Nodes(core.agent(agent), core.services)
    graph = StateGraph(RunState)
    for name in NODES:
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "plan")
    for name in NODES:
        graph.add_conditional_edges(name, nodes.route, list(TARGETS))
    return graph.compile(checkpointer=core.saver)


def _masked(text: str, run_id: str) -> str:
    text = text.replace(run_id, "RUN")
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "TIME", text)
    return re.sub(r"\b[0-9a-f]{16,64}\b", "HEX", text)


def _stored(runner: Runner, agent: str, run_id: str) -> str:
    """What the run's checkpoints, next step and audit trail hold, ids and times masked."""
    config = {"configurable": {"thread_id": run_id}}
    checkpoints = []
    for saved in runner._core.saver.list(config):
        cp = saved.checkpoint
        checkpoints.append(
            {
                "metadata": {k: v for k, v in saved.metadata.items() if k != "fencing_token"},
                "versions": sorted(cp["channel_versions"]),
                "seen": {k: sorted(v) for k, v in cp["versions_seen"].items()},
                "values": cp["channel_values"],
                "pending": [(w[1], w[2]) for w in saved.pending_writes or []],
            }
        )
    snapshot = runner._core.graph(agent).get_state(config)
    trail = runner.audit_trail(run_id)
    assert trail.verify.ok
    audit = [e.model_dump(mode="json") for e in trail.events]
    stored = {"checkpoints": checkpoints, "next": snapshot.next, "audit": audit}
    return _masked(json.dumps(stored, sort_keys=True, default=str), run_id)


def _both(client: redis.Redis, key_prefix: str, agent: str) -> tuple[Runner, Runner]:
    routed = Runner(client, prefix=key_prefix + "routed:", clock=VirtualClock())
    edged = Runner(client, prefix=key_prefix + "edged:", clock=VirtualClock())
    edged._core._graphs[agent] = _conditional_edges_graph(edged, agent)
    return routed, edged


def test_nodes_route_themselves_and_the_drawing_keeps_every_edge(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    runner = Runner(redis_client, prefix=key_prefix)
    graph = runner._core.graph("demo")
    assert dict(graph.builder.branches) == {}  # nothing reads the channels back to route
    # a node routes on {**state, **update}: right while every channel keeps the last value
    assert {type(c) for c in StateGraph(RunState).channels.values()} == {LastValue}
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    drawn = {
        (e.source, e.target) for e in _conditional_edges_graph(runner, "demo").get_graph().edges
    }
    assert edges == drawn


def test_a_held_start_and_its_approval_store_the_same_as_with_conditional_edges(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    routed, edged = _both(redis_client, key_prefix, "demo")
    stored = []
    for runner in (routed, edged):
        view = runner.start("demo", demo_case, requester="sam", world=demo_world)
        assert view.status == "paused" and view.pending is not None
        parked = _stored(runner, "demo", view.run_id)
        request = view.pending.request
        approve = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
        decided = runner.decide(request.approval_id, approve)
        stored.append((parked, decided.run.status, _stored(runner, "demo", view.run_id)))
    assert stored[0] == stored[1]
    assert '"hold"' in stored[0][0]  # parked on its hold, in both


def test_a_referral_intake_start_stores_the_same_as_with_conditional_edges(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    case, world = intake_case_and_world()
    routed, edged = _both(redis_client, key_prefix, "referral_intake")
    stored = []
    for runner in (routed, edged):
        view = runner.start("referral_intake", case, requester="sam", world=world)
        assert view.status == "waiting"
        stored.append(_stored(runner, "referral_intake", view.run_id))
    assert stored[0] == stored[1]
