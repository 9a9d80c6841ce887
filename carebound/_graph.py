"""The bounded-agent graph: plan -> gate -> (hold) -> execute, with waits.

Every proposed call passes the gate outside the model, in this order: known tool and valid
arguments, permission against the agent's grant, the hold policy (on facts the tool computes
from trusted data), the budget, then execution through the effect ledger, and audit.

Nodes are written for LangGraph's replay rule (a node re-runs from its start on resume): the
``hold`` and ``wait`` nodes interrupt before anything else and otherwise read what was recorded
in Redis, the gate's side effects (parking an approval) are idempotent, effects go through the
ledger, and every audit append is idempotent. A call's node plans the next turn in the same
step (see ``_Nodes._then_plan``), so a decision reaches the run's next stop in two steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    CallResult,
    Plan,
    PlannerView,
    ProposedCall,
    RunEvent,
)
from carebound._errors import CareboundError, LeaseLostError
from carebound._ledger import EffectLedger
from carebound.approvals import (
    ApprovalRequest,
    ApprovalStore,
    ApprovalView,
    DecisionPacket,
    Edit,
    PacketCheck,
    PinnedVersions,
)
from carebound.audit import Actor, AuditLog
from carebound.clock import Clock
from carebound.guardrails import PolicyPack, PolicyVerdict, check_permission, evaluate_rules
from carebound.tools import EffectClass, FactValue, ToolContext, ToolSpec

_log = logging.getLogger("carebound.graph")


class RunState(TypedDict, total=False):
    """A run's graph state. JSON values only: it is checkpointed without pickle."""

    run_id: str
    requester: str
    started_at: str
    queue: list[dict[str, Any]]
    current: dict[str, Any] | None
    results: list[dict[str, Any]]
    events: list[dict[str, Any]]
    findings: dict[str, Any]
    memory: dict[str, Any]
    steps: int
    tool_calls: int
    turn: int
    status: str
    summary: str
    wait: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class Services:
    """The per-process services the graph's nodes use."""

    client: redis.Redis
    prefix: str
    clock: Clock
    approvals: ApprovalStore
    ledger: EffectLedger
    audit: AuditLog
    pack_for: Callable[[str], PolicyPack]
    """Run id -> the policy pack the run was started with."""
    case_for: Callable[[str], Mapping[str, Any]]
    world_for: Callable[[str], Any]
    model: Any = None
    decided: Mapping[str, ApprovalView] = field(default_factory=dict)
    """Approvals this process has just decided and is resuming runs past: final, so the hold
    node need not read them back."""
    heartbeat: Callable[[str, int], AbstractContextManager[object]] | None = None
    """(run id, fencing token) -> a context that keeps the run's lease alive while a tool
    call runs (``RunLease.heartbeat``)."""


@dataclass(frozen=True)
class _ToolOutcome:
    """What one tool call gave: its output, or the error it ended with."""

    output: Any = None
    error: str | None = None
    error_class: str | None = None
    crashed: bool = False
    """It raised something no tool is expected to raise (a bug or a broken connector): the
    run stops as ``failed`` instead of letting the agent plan on."""


def _run_id(config: RunnableConfig) -> str:
    return str(config.get("configurable", {})["thread_id"])


def patient_ref_of(case: Mapping[str, Any]) -> str | None:
    """The first Patient in a FHIR Bundle, as a reference (for the audit trail)."""
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            return f"Patient/{resource['id']}"
    return None


def schema_hash(spec: ToolSpec[Any]) -> str:
    """Short hash of a tool's args schema, pinned into approvals."""
    schema = json.dumps(spec.args_schema.model_json_schema(), sort_keys=True)
    return hashlib.sha256(schema.encode()).hexdigest()[:12]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


class _Nodes:
    """The graph's nodes for one agent."""

    def __init__(self, agent: AgentDefinition, svc: Services) -> None:
        self.agent = agent
        self.svc = svc

    # -- helpers -------------------------------------------------------------------------

    def _ctx(self, state: RunState, run_id: str) -> AgentContext:
        return AgentContext(
            run_id=run_id,
            agent=self.agent.name,
            now=self.svc.clock.now(),
            requester=state.get("requester", ""),
            pack=self.svc.pack_for(run_id),
            case=self.svc.case_for(run_id),
            world=self.svc.world_for(run_id),
            model=self.svc.model,
        )

    def _patient(self, run_id: str) -> str | None:
        case = self.svc.case_for(run_id)
        finder = self.agent.patient_ref or patient_ref_of
        return finder(case)

    def _audit(
        self,
        run_id: str,
        *,
        action: Any,
        outcome: Any,
        detail: dict[str, FactValue],
        actor: Actor | None = None,
        category: str | None = None,
        once: str | None = None,
        before: Callable[[redis.client.Pipeline], object] | None = None,
    ) -> None:
        self.svc.audit.record(
            run_id,
            time=self.svc.clock.now(),
            actor=actor or Actor(kind="agent", id=self.agent.name, role=None),
            action=action,
            category=category or self.agent.category,
            outcome=outcome,
            patient_ref=self._patient(run_id),
            detail=detail,
            once=once,
            before=before,
        )

    def _finish_call(self, state: RunState, result: CallResult, **extra: Any) -> dict[str, Any]:
        update: dict[str, Any] = {
            "results": [*state.get("results", []), result.model_dump(mode="json")],
            "current": None,
        }
        update.update(extra)
        return update

    # -- plan ----------------------------------------------------------------------------

    def plan(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        return self._plan(state, _run_id(config))

    def _then_plan(self, state: RunState, run_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """``update``, followed in the same step by the next plan when one is due.

        Planning right after a call (or an event) saves a super-step, and with it a checkpoint
        round trip, on the path a reviewer waits on. It is as replay-safe as a separate plan
        node: a replayed step gets the call's recorded result from the ledger and plans again.
        """
        after: dict[str, Any] = {**state, **update}
        if after.get("status") not in (None, "running") or after.get("queue"):
            return update
        if after.get("wait") or after.get("current"):
            return update
        return {**update, **self._plan(after, run_id)}  # type: ignore[arg-type]

    def _plan(self, state: RunState, run_id: str) -> dict[str, Any]:
        pack = self.svc.pack_for(run_id)
        budgets = pack.agent_policy(self.agent.name).budgets
        now = self.svc.clock.now()
        steps = state.get("steps", 0) + 1
        started = datetime.fromisoformat(state["started_at"])
        exhausted = None
        if steps > budgets.steps:
            exhausted = f"step budget of {budgets.steps} used up"
        elif now - started > budgets.elapsed:
            exhausted = f"time budget of {budgets.elapsed} used up"
        if exhausted:
            self._audit(
                run_id,
                action="budget_stop",
                outcome="refused",
                detail={"budget": exhausted},
                once=f"budget:step:{steps}",
            )
            return {"status": "budget_exhausted", "summary": exhausted, "steps": steps}
        ctx = self._ctx(state, run_id)
        view = PlannerView(
            results=[CallResult.model_validate(r) for r in state.get("results", [])],
            events=[RunEvent.model_validate(e) for e in state.get("events", [])],
            findings=dict(state.get("findings", {})),
            memory=dict(state.get("memory", {})),
            turn=state.get("turn", 0),
        )
        plan: Plan = self.agent.planner(ctx, view)
        update: dict[str, Any] = {"steps": steps, "turn": view.turn + 1}
        if plan.findings is not None:
            update["findings"] = _jsonable(plan.findings)
        if plan.memory is not None:
            update["memory"] = _jsonable(plan.memory)
        if plan.finish is not None:
            update.update(status=plan.finish.status, summary=plan.finish.summary)
        elif plan.calls:
            update["queue"] = [c.model_dump(mode="json") for c in plan.calls]
        elif plan.wait is not None:
            update["wait"] = plan.wait.model_dump(mode="json")
        else:
            update.update(status="completed", summary="nothing left to do")
        return update

    @staticmethod
    def route(state: RunState) -> Literal["hold", "execute", "gate", "wait", "plan", "__end__"]:
        """Where a run goes after any node: its state alone decides."""
        if state.get("status") not in (None, "running"):
            return "__end__"
        current = state.get("current")
        if current is not None:
            return "hold" if current.get("approval_id") else "execute"
        if state.get("queue"):
            return "gate"
        if state.get("wait"):
            return "wait"
        return "plan"

    # -- gate ----------------------------------------------------------------------------

    def gate(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        run_id = _run_id(config)
        queue = list(state.get("queue", []))
        call = ProposedCall.model_validate(queue.pop(0))
        index = state.get("tool_calls", 0)
        base = {"queue": queue, "tool_calls": index + 1}
        pack = self.svc.pack_for(run_id)
        policy = pack.agent_policy(self.agent.name)

        def refuse(status: Literal["denied", "error"], reason: str) -> dict[str, Any]:
            result = CallResult(
                index=index, tool=call.tool, args=call.args, status=status, reason=reason
            )
            return self._finish_call(state, result, **base)

        if index + 1 > policy.budgets.tool_calls:
            reason = f"tool-call budget of {policy.budgets.tool_calls} used up"
            self._audit(
                run_id,
                once=f"budget:call:{index}",
                action="budget_stop",
                outcome="refused",
                detail={"budget": reason, "tool": call.tool},
            )
            return {**base, "status": "budget_exhausted", "summary": reason}
        spec = self.agent.tools.get(call.tool)
        if spec is None:
            self._audit(
                run_id,
                once=f"check:{index}",
                action="permission_check",
                outcome="denied",
                detail={"tool": call.tool[:100], "reason": "unknown tool"},
            )
            return refuse("denied", f"unknown tool {call.tool!r}: the agent has no such tool")
        try:
            args = spec.validate(call.args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            self._audit(
                run_id,
                once=f"check:{index}",
                action="permission_check",
                outcome="refused",
                detail={"tool": spec.name, "reason": "invalid arguments"},
            )
            return refuse("error", f"invalid arguments for {spec.name}: {problems}")
        permission = check_permission(policy.grant, spec, args)
        self._audit(
            run_id,
            once=f"check:{index}",
            action="permission_check",
            outcome="success" if permission.allowed else "denied",
            detail={"tool": spec.name, "scope": spec.scope, "reason": permission.reason[:200]},
        )
        if not permission.allowed:
            return refuse("denied", permission.reason)
        now = self.svc.clock.now()
        tool_ctx = ToolContext(
            run_id=run_id,
            agent=self.agent.name,
            now=now,
            idempotency_key=spec.idempotency_key(run_id, args),
            world=self.svc.world_for(run_id),
            case=self.svc.case_for(run_id),
        )
        facts = spec.compute_facts(tool_ctx, args)
        verdict = evaluate_rules(pack.rules, spec.name, facts)
        current = {
            "call": call.model_dump(mode="json"),
            "args": args.model_dump(mode="json"),
            "index": index,
            "approval_id": None,
        }
        if verdict.decision == "deny":
            self._audit(
                run_id,
                once=f"deny:{index}",
                action="deny",
                outcome="denied",
                detail={"tool": spec.name, "rule": verdict.rule_id},
            )
            return refuse("denied", f"policy rule {verdict.rule_id}: {verdict.rule_text}")
        if verdict.decision == "hold":
            request = self._request(
                state,
                run_id=run_id,
                call=call,
                spec=spec,
                args=args,
                verdict=verdict,
                facts=facts,
                index=index,
                pack=pack,
            )
            # Park, then audit: both idempotent, so a step replayed after a crash between
            # the two still records the hold exactly once.
            self.svc.approvals.park(request)
            self._audit(
                run_id,
                once=f"hold:{request.approval_id}",
                action="hold",
                outcome="held",
                detail={
                    "tool": spec.name,
                    "approval_id": request.approval_id,
                    "rule": verdict.rule_id,
                    "role": request.required_role,
                    "args_hash": request.args_hash,
                },
            )
            current["approval_id"] = request.approval_id
        return {**base, "current": current}

    def _request(
        self,
        state: RunState,
        *,
        run_id: str,
        call: ProposedCall,
        spec: ToolSpec[Any],
        args: BaseModel,
        verdict: PolicyVerdict,
        facts: Mapping[str, FactValue],
        index: int,
        pack: PolicyPack,
    ) -> ApprovalRequest:
        ctx = self._ctx(state, run_id)
        if self.agent.packet is not None:
            packet = self.agent.packet(ctx, call, verdict, facts)
        else:
            packet = DecisionPacket(
                summary=f"{self.agent.name} proposes {spec.name}",
                recommendation_text=call.why,
                on_approve=f"{spec.name} runs with the arguments shown",
                on_reject="the call is not made; the agent is told why",
            )
        rule_check = PacketCheck(
            name="hold policy",
            passed=False,
            detail=f"held for role {verdict.role}",
            rule_id=verdict.rule_id,
            rule_text=verdict.rule_text,
        )
        packet = packet.model_copy(update={"checks": [*packet.checks, rule_check]})
        assert verdict.role is not None  # a hold rule always names a role (validated at load)
        return ApprovalRequest(
            approval_id=f"{run_id}-{index}",
            run_id=run_id,
            agent=self.agent.name,
            tool=spec.name,
            args=args.model_dump(mode="json"),
            args_hash=spec.args_hash(args),
            rule_id=verdict.rule_id,
            rule_text=verdict.rule_text,
            reason=call.why or verdict.rule_text,
            packet=packet,
            risk=verdict.risk,
            required_role=verdict.role,
            deadline=ctx.now + verdict.deadline,
            two_person=verdict.two_person,
            on_timeout=verdict.on_timeout.action,
            escalate_to=verdict.on_timeout.role,
            pinned=PinnedVersions(
                agent=self.agent.name,
                agent_version=self.agent.version,
                policy=pack.name,
                policy_version=pack.version,
                policy_fingerprint=pack.fingerprint,
                tool_schema=schema_hash(spec),
            ),
            requester=state.get("requester", ""),
            patient_ref=self._patient(run_id),
            created_at=ctx.now,
        )

    # -- hold ----------------------------------------------------------------------------

    def hold(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Park on the approval; once decided, make (or drop) the call and plan, one step."""
        run_id = _run_id(config)
        current = dict(state["current"] or {})
        approval_id = current["approval_id"]
        view = self.svc.decided.get(approval_id) or self.svc.approvals.get(approval_id)
        if view is not None and view.status == "pending":
            interrupt({"type": "hold", "approval_id": approval_id})
            view = self.svc.approvals.get(approval_id)
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
            return self._then_plan(state, run_id, self._perform(state, config, current))
        reason = getattr(decision, "reason", None) or "the hold passed its deadline"
        result = CallResult(
            index=current["index"],
            tool=current["call"]["tool"],
            args=current["args"],
            status="rejected" if view.status == "rejected" else "expired",
            reason=reason,
            approval_id=approval_id,
        )
        return self._then_plan(state, run_id, self._finish_call(state, result))

    # -- execute -------------------------------------------------------------------------

    def execute(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Make the gated call through the effect ledger, then plan, in one step."""
        run_id = _run_id(config)
        update = self._perform(state, config, dict(state["current"] or {}))
        return self._then_plan(state, run_id, update)

    def _perform(
        self, state: RunState, config: RunnableConfig, current: dict[str, Any]
    ) -> dict[str, Any]:
        run_id = _run_id(config)
        token = config.get("configurable", {}).get("fencing_token")
        call = ProposedCall.model_validate(current["call"])
        spec = self.agent.tools[call.tool]
        args = spec.validate(current["args"])
        index = int(current["index"])
        pack = self.svc.pack_for(run_id)
        permission = check_permission(pack.agent_policy(self.agent.name).grant, spec, args)
        if not permission.allowed:  # an edit never widens the grant
            self._audit(
                run_id,
                once=f"recheck:{index}",
                action="permission_check",
                outcome="denied",
                detail={"tool": spec.name, "reason": permission.reason[:200]},
            )
            result = CallResult(
                index=index,
                tool=spec.name,
                args=current["args"],
                status="denied",
                reason=permission.reason,
            )
            return self._finish_call(state, result)
        now = self.svc.clock.now()
        key = spec.idempotency_key(run_id, args)
        ctx = ToolContext(
            run_id=run_id,
            agent=self.agent.name,
            now=now,
            idempotency_key=key,
            world=self.svc.world_for(run_id),
            case=self.svc.case_for(run_id),
        )
        detail: dict[str, FactValue] = {"tool": spec.name, "key": key, "effect": spec.effect.value}
        if spec.effect is EffectClass.READ:
            outcome = self._call(spec, ctx, args, token)
            output, error = outcome.output, outcome.error
            self._audit(
                run_id,
                action="read",
                outcome="failed" if error else "success",
                detail={**detail, **_error_detail(outcome)},
                once=f"read:{index}",
            )
        else:
            entry = self.svc.ledger.reserve(run_id, key, spec.name, now)
            record_result: Callable[[redis.client.Pipeline], object] | None = None
            if entry is not None and entry.status != "reserved":
                outcome = _ToolOutcome(  # a replay: the recorded result
                    output=entry.result,
                    error=entry.error,
                    error_class=entry.error_class,
                    crashed=(entry.error or "").startswith(_CRASH_PREFIX),
                )
                output, error = outcome.output, outcome.error
            else:
                attempts = entry.attempts if entry else 1
                outcome = self._call(spec, ctx, args, token)
                output, error = outcome.output, outcome.error
                done_at = self.svc.clock.now()

                def record_result(pipe: redis.client.Pipeline) -> None:
                    self.svc.ledger.complete(
                        run_id,
                        key,
                        spec.name,
                        output,
                        reserved_at=entry.reserved_at if entry else now,
                        now=done_at,
                        attempts=attempts,
                        error=error,
                        error_class=outcome.error_class,
                        pipe=pipe,
                    )

            if spec.audit_detail is not None and not error:
                detail.update(spec.audit_detail(args, output))
            # The ledger's result goes first, in the same round trip. The audit append is
            # idempotent on the key: a replay after a crash between the two records it once.
            self._audit(
                run_id,
                once=f"effect:{key}",
                action="effect",
                outcome="failed" if error else "success",
                detail={**detail, "decided": current.get("decided"), **_error_detail(outcome)},
                before=record_result,
            )
        result = CallResult(
            index=index,
            tool=spec.name,
            args=current["args"],
            status="error" if error else "executed",
            result=output,
            reason=error,
        )
        if outcome.crashed:
            return self._finish_call(
                state,
                result,
                status="failed",
                summary=f"stopped: {error}; see the run's audit trail",
            )
        return self._finish_call(state, result)

    def _call(
        self, spec: ToolSpec[Any], ctx: ToolContext, args: BaseModel, token: int | None
    ) -> _ToolOutcome:
        """Run the tool, keeping the run's lease alive meanwhile (a slow connector must not
        let another process take the run and call it again)."""
        if self.svc.heartbeat is None or token is None:
            return _run_tool(spec, ctx, args)
        with self.svc.heartbeat(ctx.run_id, int(token)):
            return _run_tool(spec, ctx, args)

    # -- wait ----------------------------------------------------------------------------

    def wait(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Park until an event or a timer; then record it and plan, in one step."""
        wait = state.get("wait") or {}
        value = interrupt({"type": "wait", **wait})
        try:
            event = RunEvent.model_validate(value)
        except ValidationError:
            return {}  # a resume meant for another stop (a hold's): keep waiting

        seen = {e["id"] for e in state.get("events", [])}
        if event.id in seen:
            return {}  # a redelivered event: keep waiting
        update = {"events": [*state.get("events", []), event.model_dump(mode="json")], "wait": None}
        return self._then_plan(state, _run_id(config), update)


_CRASH_PREFIX = "unexpected "


def _run_tool(spec: ToolSpec[Any], ctx: ToolContext, args: BaseModel) -> _ToolOutcome:
    """Run one tool call; whatever it raises ends the call as a recorded error.

    Errors tools are expected to raise (carebound's, and bad values or lookups) go back to
    the agent. Anything else is a bug or a broken connector: recorded by class only (an
    exception message can carry PHI) and the run stops as ``failed``. Only a store outage
    or a lost lease stops the step itself: it resumes when the store is back.
    """
    try:
        return _ToolOutcome(output=_jsonable(spec.run(ctx, args)))
    except (redis.RedisError, LeaseLostError):
        raise
    except CareboundError as exc:
        return _ToolOutcome(error=exc.message, error_class=type(exc).__name__)
    except (ValueError, LookupError, TypeError) as exc:
        return _ToolOutcome(error=f"{type(exc).__name__}: {exc}", error_class=type(exc).__name__)
    except Exception as exc:
        name = type(exc).__name__
        _log.warning("run %s: tool %s raised %s", ctx.run_id, spec.name, name)
        return _ToolOutcome(
            error=f"{_CRASH_PREFIX}{name} from tool {spec.name} (its message is not kept: "
            "it may hold PHI)",
            error_class=name,
            crashed=True,
        )


def _error_detail(outcome: _ToolOutcome) -> dict[str, FactValue]:
    return {"error_class": outcome.error_class} if outcome.error_class else {}


def build_graph(
    agent: AgentDefinition, svc: Services, checkpointer: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the bounded-agent graph for ``agent``."""
    nodes = _Nodes(agent, svc)
    graph = StateGraph(RunState)
    graph.add_node("plan", nodes.plan)
    graph.add_node("gate", nodes.gate)
    graph.add_node("hold", nodes.hold)
    graph.add_node("execute", nodes.execute)
    graph.add_node("wait", nodes.wait)
    graph.add_edge(START, "plan")
    targets = ["hold", "execute", "gate", "wait", "plan", END]
    for name in ("plan", "gate", "hold", "execute", "wait"):
        graph.add_conditional_edges(name, nodes.route, targets)
    return graph.compile(checkpointer=checkpointer)
