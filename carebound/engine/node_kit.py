"""What every node of the graph shares: the agent's context, audit appends, planning."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import orjson
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from carebound._agent import AgentContext, AgentDefinition, CallResult, Plan, PlannerView, RunEvent
from carebound.assist import ModelCall
from carebound.audit import Actor
from carebound.engine.outage import clear_outage, park_outside_call
from carebound.engine.reads import AuditedReader
from carebound.engine.services import RunState, Services
from carebound.state.trips import Pipeline
from carebound.tools import FactValue, ToolSpec
from carebound.tools.connectors import SystemUnavailableError


def config_run_id(config: RunnableConfig) -> str:
    """The run id a graph step runs for (its thread id)."""
    return str(config.get("configurable", {})["thread_id"])


FRESH_STEPS = "fresh_steps"
"""Configurable key a drive sets on each invoke: true when none of its steps can be the replay
of a step a crashed driver began (a new run, or one read parked on an interrupt)."""


def config_fresh_steps(config: RunnableConfig) -> bool:
    """Whether the graph step runs fresh (see ``FRESH_STEPS``; unknown: it may be a replay)."""
    return bool(config.get("configurable", {}).get(FRESH_STEPS, False))


REPLAYED_GATE = "replayed_gate"
"""Configurable key a drive sets on an invoke that continues a step a crashed driver began: the
index of the call that step's gate judges first. A hold that gate parked may be in the inbox
with no checkpoint recording it; a replay that does not hold the call again withdraws it."""


def config_replayed_gate(config: RunnableConfig) -> int | None:
    """The index of the call a crashed step's gate judges first, in the invoke that replays
    that step (``REPLAYED_GATE``); None in any other invoke."""
    value = config.get("configurable", {}).get(REPLAYED_GATE)
    return int(value) if value is not None else None


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


_AS_JSON_MODULE = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, what ``json.loads(json.dumps(value, default=str))``
    gives, but for two values standard JSON has no form for, which become what orjson
    writes: NaN and the infinities become None (the standard library wrote the non-JSON
    ``NaN``), and a plain ``Enum`` member its value (not ``str(member)``); through orjson (a
    tool's output, a plan's findings: about 0.7 ms of a start's CPU went to the standard
    library's round trip), the standard library where orjson refuses (an integer over 64
    bits)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=_AS_JSON_MODULE))
    except orjson.JSONEncodeError:
        return json.loads(json.dumps(value, default=str))


class ModelCallRecorder:
    """Appends one ``model_call`` audit event per model call of one node invocation; each is
    recorded once when LangGraph runs the node again (``once`` per ``(namespace, n)``)."""

    _OUTCOMES: ClassVar[dict[str, str]] = {
        "ok": "success",
        "invalid": "refused",
        "timeout": "failed",
        "error": "failed",
    }

    def __init__(self, kit: NodeKit, run_id: str, namespace: str) -> None:
        self._kit = kit
        self._run_id = run_id
        self._namespace = namespace
        self._count = 0

    def __call__(self, call: ModelCall) -> None:
        self._count += 1
        self._kit.audit(
            self._run_id,
            action="model_call",
            outcome=self._OUTCOMES[call.outcome],
            detail=call.detail(),
            once=f"model:{self._namespace}:{self._count}",
        )


class NodeKit:
    """The helpers the graph's nodes for one agent share."""

    def __init__(self, agent: AgentDefinition, svc: Services) -> None:
        self.agent = agent
        self.svc = svc

    def ctx(self, state: RunState, run_id: str, *, reads: str) -> AgentContext:
        """The agent's context; ``reads`` names this use of it in the audit events of its
        reads (stable when LangGraph runs the node again, so each read is recorded once)."""
        return AgentContext(
            run_id=run_id,
            agent=self.agent.name,
            now=self.svc.clock.now(),
            requester=state.get("requester", ""),
            pack=self.svc.pack_for(run_id),
            case=self.svc.case_for(run_id),
            read=AuditedReader(self, run_id, reads),
            model=self.svc.model,
            models=self.svc.models,
            record_model_call=ModelCallRecorder(self, run_id, reads),
        )

    def patient(self, run_id: str) -> str | None:
        case = self.svc.case_for(run_id)
        finder = self.agent.patient_ref or patient_ref_of
        return finder(case)

    def audit(
        self,
        run_id: str,
        *,
        action: Any,
        outcome: Any,
        detail: dict[str, FactValue],
        actor: Actor | None = None,
        category: str | None = None,
        once: str | None = None,
        before: Callable[[Pipeline], object] | None = None,
    ) -> None:
        self.svc.audit.record(
            run_id,
            time=self.svc.clock.now(),
            actor=actor or Actor(kind="agent", id=self.agent.name, role=None),
            action=action,
            category=category or self.agent.category,
            outcome=outcome,
            patient_ref=self.patient(run_id),
            detail=detail,
            once=once,
            before=before,
            ride=True,
        )

    def finish_call(self, state: RunState, result: CallResult, **extra: Any) -> dict[str, Any]:
        update: dict[str, Any] = {
            "results": [*state.get("results", []), result.model_dump(mode="json")],
            "current": None,
        }
        update.update(extra)
        return update

    # -- plan ----------------------------------------------------------------------------

    def then_plan(self, state: RunState, run_id: str, update: dict[str, Any]) -> dict[str, Any]:
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
        return {**update, **self.plan(after, run_id)}  # type: ignore[arg-type]

    def plan(self, state: RunState, run_id: str) -> dict[str, Any]:
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
            self.audit(
                run_id,
                action="budget_stop",
                outcome="refused",
                detail={"budget": exhausted},
                once=f"budget:step:{steps}",
            )
            return {"status": "budget_exhausted", "summary": exhausted, "steps": steps}
        ctx = self.ctx(state, run_id, reads=f"plan:{steps}")
        view = PlannerView(
            results=[CallResult.model_validate(r) for r in state.get("results", [])],
            events=[RunEvent.model_validate(e) for e in state.get("events", [])],
            findings=dict(state.get("findings", {})),
            memory=dict(state.get("memory", {})),
            turn=state.get("turn", 0),
        )
        try:
            plan: Plan = self.agent.planner(ctx, view)
        except SystemUnavailableError as exc:
            # A planner's read found a system down: park on it, then plan this turn again.
            return park_outside_call(self, state, run_id, "plan", exc)
        update: dict[str, Any] = {"steps": steps, "turn": view.turn + 1}
        if plan.findings is not None:
            update["findings"] = jsonable(plan.findings)
        if plan.memory is not None:
            update["memory"] = jsonable(plan.memory)
        if plan.finish is not None:
            update.update(status=plan.finish.status, summary=plan.finish.summary)
        elif plan.wait is not None:
            update["wait"] = plan.wait.model_dump(mode="json")
        else:  # a Plan holds exactly one of the three
            update["queue"] = [c.model_dump(mode="json") for c in plan.calls]
        return clear_outage(state, update)
