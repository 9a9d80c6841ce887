"""The graph's gate node: budget, known tool, valid arguments, grant, policy, then hold or go.

Every proposed call passes the gate outside the model, in this order: known tool and valid
arguments, permission against the agent's grant, the hold policy (on facts the tool computes
from trusted data), and the budget. A held call parks an approval (idempotent) and is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ValidationError

from carebound._agent import CallResult, ProposedCall
from carebound.approvals import ApprovalRequest, DecisionPacket, PacketCheck, PinnedVersions
from carebound.engine.node_kit import NodeKit, config_run_id, schema_hash
from carebound.engine.services import RunState
from carebound.guardrails import PolicyPack, PolicyVerdict, check_permission, evaluate_rules
from carebound.tools import FactValue, ToolContext, ToolSpec


class GateNode:
    """The ``gate`` node: judge the next queued call."""

    def __init__(self, kit: NodeKit) -> None:
        self.kit = kit

    def gate(self, state: RunState, config: RunnableConfig) -> dict[str, Any]:
        """Judge the next queued call: refuse it, hold it for a reviewer, or let it run."""
        run_id = config_run_id(config)
        queue = list(state.get("queue", []))
        call = ProposedCall.model_validate(queue.pop(0))
        index = state.get("tool_calls", 0)
        base = {"queue": queue, "tool_calls": index + 1}
        pack = self.kit.svc.pack_for(run_id)
        policy = pack.agent_policy(self.kit.agent.name)

        def refuse(status: Literal["denied", "error"], reason: str) -> dict[str, Any]:
            result = CallResult(
                index=index, tool=call.tool, args=call.args, status=status, reason=reason
            )
            return self.kit.finish_call(state, result, **base)

        if index + 1 > policy.budgets.tool_calls:
            reason = f"tool-call budget of {policy.budgets.tool_calls} used up"
            self.kit.audit(
                run_id,
                once=f"budget:call:{index}",
                action="budget_stop",
                outcome="refused",
                detail={"budget": reason, "tool": call.tool},
            )
            return {**base, "status": "budget_exhausted", "summary": reason}
        spec = self.kit.agent.tools.get(call.tool)
        if spec is None:
            self.kit.audit(
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
            self.kit.audit(
                run_id,
                once=f"check:{index}",
                action="permission_check",
                outcome="refused",
                detail={"tool": spec.name, "reason": "invalid arguments"},
            )
            return refuse("error", f"invalid arguments for {spec.name}: {problems}")
        permission = check_permission(policy.grant, spec, args)
        self.kit.audit(
            run_id,
            once=f"check:{index}",
            action="permission_check",
            outcome="success" if permission.allowed else "denied",
            detail={"tool": spec.name, "scope": spec.scope, "reason": permission.reason[:200]},
        )
        if not permission.allowed:
            return refuse("denied", permission.reason)
        facts = spec.compute_facts(self._tool_ctx(run_id, spec, args), args)
        verdict = evaluate_rules(pack.rules, spec.name, facts)
        current = {
            "call": call.model_dump(mode="json"),
            "args": args.model_dump(mode="json"),
            "index": index,
            "approval_id": None,
        }
        if verdict.decision == "deny":
            self.kit.audit(
                run_id,
                once=f"deny:{index}",
                action="deny",
                outcome="denied",
                detail={"tool": spec.name, "rule": verdict.rule_id},
            )
            return refuse("denied", f"policy rule {verdict.rule_id}: {verdict.rule_text}")
        if verdict.decision == "hold":
            current["approval_id"] = self._park(
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
        return {**base, "current": current}

    def hold_again(
        self,
        state: RunState,
        config: RunnableConfig,
        current: dict[str, Any],
        *,
        spec: ToolSpec[Any],
        args: BaseModel,
        reason: str,
    ) -> dict[str, Any]:
        """Hold a call again because the record changed since it was decided (a version
        conflict): nothing was written, and a person decides on the record as it is now.

        The pack decides who, on the tool's facts plus ``record_changed: true``; a pack with no
        hold for that ends the call as an error the agent sees (never an overwrite).
        """
        run_id = config_run_id(config)
        pack = self.kit.svc.pack_for(run_id)
        call = ProposedCall.model_validate(current["call"])
        index = int(current["index"])
        ctx = self._tool_ctx(run_id, spec, args)
        facts = {**spec.compute_facts(ctx, args), "record_changed": True}
        verdict = evaluate_rules(pack.rules, spec.name, facts)
        if verdict.decision != "hold":
            result = CallResult(
                index=index,
                tool=spec.name,
                args=args.model_dump(mode="json"),
                status="error",
                reason=f"{reason} (the policy pack holds no re-decision for {spec.name})",
            )
            return self.kit.finish_call(state, result)
        approval_id = self._park(
            state,
            run_id=run_id,
            call=call.model_copy(update={"why": reason[:300]}),
            spec=spec,
            args=args,
            verdict=verdict,
            facts=facts,
            index=index,
            pack=pack,
            approval_id=f"{run_id}-{index}-{spec.args_hash(args)[:8]}",
        )
        rebased = {
            **current,
            "args": args.model_dump(mode="json"),
            "approval_id": approval_id,
            "decided": None,
        }
        return {"current": rebased}

    def _tool_ctx(self, run_id: str, spec: ToolSpec[Any], args: BaseModel) -> ToolContext:
        return ToolContext(
            run_id=run_id,
            agent=self.kit.agent.name,
            now=self.kit.svc.clock.now(),
            idempotency_key=spec.idempotency_key(run_id, args),
            world=self.kit.svc.world_for(run_id),
            case=self.kit.svc.case_for(run_id),
        )

    def _park(
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
        approval_id: str | None = None,
    ) -> str:
        """Park an approval for the call and audit the hold; return the approval's id."""
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
        if approval_id is not None:
            request = request.model_copy(update={"approval_id": approval_id})
        # Park, then audit: both idempotent, so a step replayed after a crash between
        # the two still records the hold exactly once.
        self.kit.svc.approvals.park(request)
        self.kit.audit(
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
        return request.approval_id

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
        ctx = self.kit.ctx(state, run_id)
        if self.kit.agent.packet is not None:
            packet = self.kit.agent.packet(ctx, call, verdict, facts)
        else:
            packet = DecisionPacket(
                summary=f"{self.kit.agent.name} proposes {spec.name}",
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
            agent=self.kit.agent.name,
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
                agent=self.kit.agent.name,
                agent_version=self.kit.agent.version,
                policy=pack.name,
                policy_version=pack.version,
                policy_fingerprint=pack.fingerprint,
                tool_schema=schema_hash(spec),
            ),
            requester=state.get("requester", ""),
            patient_ref=self.kit.patient(run_id),
            created_at=ctx.now,
        )

    # -- hold ----------------------------------------------------------------------------
