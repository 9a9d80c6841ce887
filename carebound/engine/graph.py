"""The bounded-agent graph: plan -> gate -> (hold) -> execute, with waits.

Every proposed call passes the gate outside the model (:func:`carebound.guardrails.judge`, in
this order: the call budget, known tool and valid arguments, the agent's grant, the hold policy
on facts the tool computes from trusted data), then execution through the effect ledger, and
audit. The state and the signals the graph parks on are typed in
:mod:`~carebound.engine.run_state`.

Nodes are written for LangGraph's replay rule (a node re-runs from its start on resume): the
``hold`` and ``wait`` nodes interrupt before anything else and otherwise read what was recorded
in Redis, the gate's side effects (parking an approval) are idempotent, effects go through the
ledger, and every audit append is idempotent. A call's node plans the next turn in the same
step (see ``NodeKit.then_plan``), so a decision reaches the run's next stop in two steps. A call
the gate allows is made in the step that gated it, and the reads planned after it are gated and
made in that step too (``_Nodes._may_follow`` says why a replay stays sound): a start of
``referral_intake`` takes 6 steps instead of 20.

The nodes live in their own modules: :mod:`~carebound.engine.node_kit` (what they share, and
planning), :mod:`~carebound.engine.gate_node` and :mod:`~carebound.engine.execute_node`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from pydantic import ValidationError

from carebound._agent import AgentDefinition, CallResult, RunEvent
from carebound.approvals import Edit
from carebound.engine.decision_audit import stored_decision_append
from carebound.engine.execute_node import Executor
from carebound.engine.gate_node import GateNode
from carebound.engine.node_kit import NodeKit, config_replayed_gate, config_run_id
from carebound.engine.outage import clear_outage, park_or_hand_off, park_outside_call
from carebound.engine.run_state import CurrentCall, RunState, hold_signal, wait_signal
from carebound.engine.services import Services
from carebound.tools import EffectClass
from carebound.tools.connectors import SystemUnavailableError

__all__ = ["RunState", "Services", "build_graph"]


class _Nodes:
    """The graph's nodes for one agent."""

    def __init__(self, agent: AgentDefinition, svc: Services) -> None:
        self.kit = NodeKit(agent, svc)
        gate = GateNode(self.kit)
        self._gate = gate.gate
        self.executor = Executor(self.kit, rehold=gate.hold_again)

    def plan(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Plan the next turn (or stop on a budget), then make the planned calls that may
        follow in the same step (see :meth:`_may_follow`)."""
        update = self.kit.plan(state, config_run_id(config))
        after: RunState = {**state, **update}  # type: ignore[typeddict-item]
        if self.route(after) != "gate" or not self._may_follow(after):
            return update
        return self._calls(state, config, update)

    def gate(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Judge the next queued call and make it if allowed, then the calls that follow it
        while they may (see :meth:`_may_follow`), in one step."""
        return self._calls(state, config, {})

    def _calls(
        self, state: RunState, config: RunnableConfig, update: dict[str, Any]
    ) -> dict[str, Any]:
        """``update``, then the queued calls gated and made one after the other (each
        followed by the plan it leads to), for as long as the next one may follow."""
        update = dict(update)
        after: RunState = {**state, **update}  # type: ignore[typeddict-item]
        first = not update  # the step's first call: it may be an effect, or held
        while True:
            gated = self._gate_one(after, config, park=first)
            if gated is None:
                return update  # held after another call: judged again in a step of its own
            update.update(gated)
            first = False
            after = {**state, **update}  # type: ignore[typeddict-item]
            if self.route(after) != "execute":
                return update  # refused, held, a system down or the run stopped
            update.update(self.execute(after, config))
            after = {**state, **update}  # type: ignore[typeddict-item]
            if self.route(after) != "gate" or not self._may_follow(after):
                return update

    def _gate_one(
        self, state: RunState, config: RunnableConfig, *, park: bool
    ) -> dict[str, Any] | None:
        """Judge the next queued call (None: held, and ``park`` is false); if a system its
        facts need is down, park the run on it and gate the call again once it is back
        (engine.outage)."""
        try:
            gated = self._gate(state, config, park=park)
            return None if gated is None else clear_outage(state, gated)
        except SystemUnavailableError as exc:
            return park_outside_call(self.kit, state, config_run_id(config), "gate", exc)

    def _may_follow(self, state: RunState) -> bool:
        """Whether the next queued call may be judged and made in the step so far.

        A step replayed after a crash runs again from its start, on the world as the crashed
        attempt left it. Had an effect followed a plan or another call in the step, the
        replay's plan could see the effect's change and propose something else, and the
        call made would be lost from the run's state. So an effect is only ever the first
        call of its step, preceded only by its own gate, which asks the effect ledger before
        the policy when the policy would not allow it now (``GateNode``): the replay records
        the call made, with the result the ledger kept. A read may follow: it changes
        nothing the step's earlier plans and gates saw, so their replay gives what the
        crashed attempt gave. (A tool the agent does not have is refused by the gate; a read
        the policy holds is parked in a step of its own, see ``GateNode.gate``.)
        """
        queue = state.get("queue") or []
        spec = self.kit.agent.tools.get(queue[0]["tool"]) if queue else None
        return spec is None or spec.effect is EffectClass.READ

    @staticmethod
    def route(state: RunState) -> Literal["hold", "execute", "gate", "wait", "plan", "__end__"]:
        """Where a run goes after any node: its state alone decides."""
        if state.get("status") not in (None, "running"):
            return "__end__"
        current = state.get("current")
        if current is not None:
            if state.get("wait"):
                return "wait"  # the call's system is down: it waits to be retried
            return "hold" if current.get("approval_id") else "execute"
        if state.get("wait"):
            return "wait"  # also a queued call whose gate found a system down
        if state.get("queue"):
            return "gate"
        return "plan"

    # -- hold ----------------------------------------------------------------------------

    def hold(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Park on the approval; once decided, make (or drop) the call and plan, one step."""
        run_id = config_run_id(config)
        held = state.get("current")
        assert held is not None and held["approval_id"] is not None  # routed here only then
        current, approval_id = held.copy(), held["approval_id"]
        view = self.kit.svc.decided.get(approval_id) or self.kit.svc.approvals.get(approval_id)
        if view is not None and view.status == "pending":
            interrupt(hold_signal(approval_id))
            view = self.kit.svc.approvals.get(approval_id)
        elif (
            view is not None and view.record is not None and approval_id not in self.kit.svc.decided
        ):
            # decided before the run ever parked on it (a step replayed after a crash holds
            # the call again, GateNode.gate): no resume audits this decision, so it is here
            append = stored_decision_append(self.kit.agent.category, view)
            self.kit.svc.audit.record(run_id, once=append.once, ride=True, **append.fields)
        if view is None or view.status == "pending" or view.record is None:
            return {}  # resumed without a decision: park again
        decision = view.record.decision
        if view.status in ("approved", "edited"):
            if isinstance(decision, Edit):
                current["args"] = decision.args
            elif view.request.original_args is not None:
                # a two-person hold whose arguments a first reviewer edited: the second
                # approved these
                current["args"] = view.request.args
            current["approval_id"] = None
            current["decided"] = view.status
            return self.kit.then_plan(state, run_id, self._perform(state, config, current))
        reason = getattr(decision, "reason", None) or "the hold passed its deadline"
        result = CallResult(
            index=current["index"],
            tool=current["call"]["tool"],
            args=current["args"],
            status="rejected" if view.status == "rejected" else "expired",
            reason=reason,
            approval_id=approval_id,
        )
        return self.kit.then_plan(state, run_id, self.kit.finish_call(state, result))

    @staticmethod
    def _replayed(config: RunnableConfig, held: CurrentCall) -> bool:
        """Whether this is the replay, after a crash, of the step that gated ``held``."""
        return config_replayed_gate(config) == held["index"]

    # -- execute -------------------------------------------------------------------------

    def execute(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Make the gated call through the effect ledger, then plan, in one step."""
        run_id = config_run_id(config)
        update = self._perform(state, config, _current(state))
        return self.kit.then_plan(state, run_id, update)

    def _perform(
        self, state: RunState, config: RunnableConfig, current: CurrentCall
    ) -> dict[str, Any]:
        """Make the call; if its system is down, park the run on it (engine.outage)."""
        try:
            return self.executor.perform(state, config, current)
        except SystemUnavailableError as exc:
            return park_or_hand_off(self.kit, state, config_run_id(config), current, exc)

    # -- wait ----------------------------------------------------------------------------

    def wait(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Park until an event or a timer; then record it and plan, in one step."""
        wait = state.get("wait")
        assert wait is not None  # routed here only while the state holds a wait
        value = interrupt(wait_signal(wait))
        try:
            event = RunEvent.model_validate(value)
        except ValidationError:
            return {}  # a resume meant for another stop (a hold's): keep waiting

        seen = {e["id"] for e in state.get("events", [])}
        if event.id in seen:
            return {}  # a redelivered event: keep waiting
        update = {"events": [*state.get("events", []), event.model_dump(mode="json")], "wait": None}
        return self.kit.then_plan(state, config_run_id(config), update)


def _current(state: RunState) -> CurrentCall:
    current = state.get("current")
    assert current is not None  # routed to execute only then
    return current.copy()


def build_graph(
    agent: AgentDefinition, svc: Services, checkpointer: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the bounded-agent graph for ``agent``."""
    nodes = _Nodes(agent, svc)
    graph = StateGraph(RunState)
    targets = ("hold", "execute", "gate", "wait", "plan", END)
    for name, node in (
        ("plan", nodes.plan),
        ("gate", nodes.gate),
        ("hold", nodes.hold),
        ("execute", nodes.execute),
        ("wait", nodes.wait),
    ):
        graph.add_node(name, _routed(node, nodes.route), destinations=targets)
    graph.add_edge(START, "plan")
    return graph.compile(checkpointer=checkpointer)


_Node = Callable[[RunState, RunnableConfig], dict[str, Any]]


def _routed(node: _Node, route: Callable[[RunState], str]) -> Callable[..., Command[str]]:
    """``node``, also saying where the run goes next: ``route`` on the state after its update
    (every channel of ``RunState`` keeps the last value written, so that is ``{**state,
    **update}``). The same writes as a conditional edge from the node, ``branch:to:<next>``
    (none for the end), without LangGraph reading every channel back after each step to
    route it (~2% of a ``referral_intake`` start's CPU; tests/test_graph_routing.py)."""

    def run(state: RunState, config: RunnableConfig) -> Command[str]:
        update = node(state, config)
        return Command(update=update, goto=route({**state, **update}))  # type: ignore[typeddict-item]

    return run
