"""The graph's gate node: the gate's verdict on the next queued call, then hold or go.

The judging is :func:`carebound.guardrails.judge`'s (budget, known tool, valid arguments, grant,
policy on facts the tool computes from trusted data); this node acts on its verdict: refuse and
audit, park an approval (idempotent) and audit the hold, or let the call run. A call held again
after a version conflict (``hold_again``) is judged by the same gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ValidationError

from carebound._agent import CallResult, ProposedCall
from carebound.approvals import ApprovalRequest, DecisionPacket, PacketCheck, PinnedVersions
from carebound.engine.node_kit import (
    NodeKit,
    config_fresh_steps,
    config_replayed_gate,
    config_run_id,
    schema_hash,
)
from carebound.engine.run_state import CallData, CurrentCall, RunState
from carebound.engine.tracing import current_traceparent, hold_made
from carebound.guardrails import CallBudget, Held, PolicyCheck, PolicyPack, judge
from carebound.tools import EffectClass, FactValue, ToolSpec


class GateNode:
    """The ``gate`` node: judge the next queued call."""

    def __init__(self, kit: NodeKit) -> None:
        self.kit = kit

    def gate(
        self, state: RunState, config: RunnableConfig, *, park: bool = True
    ) -> dict[str, Any] | None:
        """Judge the next queued call: refuse it, hold it for a reviewer, or let it run (see
        :meth:`_judge`). In the replay of a step a crashed driver began, a hold that step
        parked for this call and that the replay does not hold again is withdrawn from the
        inbox (the world changed meanwhile: the policy allows or refuses the call now)."""
        update = self._judge(state, config, park=park)
        index = state.get("tool_calls", 0)
        if update is not None and config_replayed_gate(config) == index:
            run_id = config_run_id(config)
            approval_id = f"{run_id}-{index}"
            current = update.get("current")
            if current is not None and self._decided_for(approval_id, current):
                # a reviewer decided this very call while the run waited to be recovered:
                # the replay holds it again, so their decision is applied (a rejection
                # stands though the policy would let the call run now)
                return {**update, "current": {**current, "approval_id": approval_id}}
            if (current or {}).get("approval_id") != approval_id:
                self._withdraw(run_id, approval_id)
        return update

    def _decided_for(self, approval_id: str, current: CurrentCall) -> bool:
        """Whether the hold ``approval_id`` (parked by the crashed attempt of this step) was
        decided for the call ``current`` about to run: same tool, same arguments."""
        if current.get("approval_id") is not None:
            return False  # the replay holds the call itself
        view = self.kit.svc.approvals.get(approval_id)
        if view is None or view.status in ("pending", "withdrawn"):
            return False
        spec = self.kit.agent.tools.get(current["call"]["tool"])
        if spec is None or view.request.tool != spec.name:
            return False
        try:
            args_hash = spec.args_hash(spec.validate(current["args"]))
        except ValidationError:
            return False
        return args_hash == view.request.args_hash

    def _withdraw(self, run_id: str, approval_id: str) -> None:
        """Withdraw the hold ``approval_id`` if it is still pending, and audit it (once)."""
        if not self.kit.svc.approvals.withdraw(approval_id, now=self.kit.svc.clock.now()):
            return
        self.kit.audit(
            run_id,
            once=f"withdraw:{approval_id}",
            action="event",
            outcome="success",
            detail={
                "kind": "hold_withdrawn",
                "approval_id": approval_id,
                "reason": "parked before a crash; the replayed step did not hold the call",
            },
        )

    def _judge(
        self, state: RunState, config: RunnableConfig, *, park: bool = True
    ) -> dict[str, Any] | None:
        """Judge the next queued call: refuse it, hold it for a reviewer, or let it run.

        None, and nothing parked, for a call to hold when ``park`` is false: the graph gates a
        call after another one in the same step only then, and a hold is parked only by a
        step's first call (whose replay after a crash judges the same call again; a later
        call of the step may not be proposed again by a replay that plans on a changed world,
        and its hold would be left in the inbox)."""
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

        def facts_of(spec: ToolSpec[Any], args: BaseModel) -> Mapping[str, FactValue]:
            return self.kit.svc.facts(run_id, self.kit.agent.name, spec, args)

        verdict = judge(
            call.tool,
            call.args,
            tools=self.kit.agent.tools,
            grant=policy.grant,
            policy=PolicyCheck(rules=pack.rules, facts_of=facts_of),
            budget=CallBudget(used=index, limit=policy.budgets.tool_calls),
        )
        if verdict.kind == "over_budget":
            self.kit.audit(
                run_id,
                once=f"budget:call:{index}",
                action="budget_stop",
                outcome="refused",
                detail={"budget": verdict.reason, "tool": call.tool},
            )
            return {**base, "status": "budget_exhausted", "summary": verdict.reason}
        if verdict.kind == "unknown_tool":
            self.kit.audit(
                run_id,
                once=f"check:{index}",
                action="permission_check",
                outcome="denied",
                detail={"tool": call.tool[:100], "reason": "unknown tool"},
            )
            return refuse("denied", verdict.reason)
        if verdict.kind == "invalid_args":
            self.kit.audit(
                run_id,
                once=f"check:{index}",
                action="permission_check",
                outcome="refused",
                detail={"tool": verdict.tool, "reason": "invalid arguments"},
            )
            return refuse("error", verdict.reason)
        spec, args = verdict.spec, verdict.args
        granted = verdict.kind != "denied" or verdict.by == "rule"
        self.kit.audit(
            run_id,
            once=f"check:{index}",
            action="permission_check",
            outcome="success" if granted else "denied",
            detail={"tool": spec.name, "scope": spec.scope, "reason": verdict.permission[:200]},
        )
        if verdict.kind == "denied" and verdict.by == "grant":
            return refuse("denied", verdict.reason)
        replayed = (
            verdict.kind != "allowed"
            and not config_fresh_steps(config)
            and self._effect_on_record(state, run_id, spec, args)
        )
        if verdict.kind == "denied" and not replayed:
            self.kit.audit(
                run_id,
                once=f"deny:{index}",
                action="deny",
                outcome="denied",
                detail={"tool": spec.name, "rule": verdict.rule_id},
            )
            return refuse("denied", verdict.reason)
        current: CurrentCall = {
            "call": CallData(tool=call.tool, args=call.args, why=call.why),
            "args": args.model_dump(mode="json"),
            "index": index,
            "approval_id": None,
        }
        if verdict.kind == "held" and not replayed:
            if not park:
                return None
            request = self._request(state, run_id, call, verdict, index=index, pack=pack)
            current["approval_id"] = self._park(run_id, verdict, request)
        return {**base, "current": current}

    def _effect_on_record(
        self, state: RunState, run_id: str, spec: ToolSpec[Any], args: BaseModel
    ) -> bool:
        """Whether this call's effect was already reserved in the ledger by an earlier attempt
        of this same step, so the policy's verdict must not be asked again.

        The graph makes an allowed call in the step that gated it (``graph``): a step replayed
        after a crash that came after the effect judges the call again on facts the effect
        itself changed (a fixed field no longer differs), and a hold or deny now would record a
        call that was made as held or refused. The ledger says what happened: a key reserved
        and not explained by an earlier call of the run (whose result is in the state: the same
        key gives that call's recorded result, so nothing new can have been done) was reserved
        by this call after the policy allowed it. Asked only when the policy does not allow an
        effect in a step that may be a replay (one round trip then; none on the allowed path,
        nor in a drive's fresh steps: ``node_kit.FRESH_STEPS``); reads are never in the ledger.
        """
        if spec.effect is EffectClass.READ:
            return False
        key = spec.idempotency_key(run_id, args)
        for earlier in state.get("results", []):
            if earlier.get("tool") == spec.name and earlier.get("status") in ("executed", "error"):
                try:
                    if spec.idempotency_key(run_id, spec.validate(earlier["args"])) == key:
                        return False
                except ValidationError:
                    continue
        return self.kit.svc.ledger.has(run_id, key)

    def hold_again(
        self,
        state: RunState,
        config: RunnableConfig,
        current: CurrentCall,
        *,
        spec: ToolSpec[Any],
        args: BaseModel,
        reason: str,
    ) -> dict[str, Any]:
        """Hold a call again because the record changed since it was decided (a version
        conflict): nothing was written, and a person decides on the record as it is now.

        The gate judges the rebased call, with ``record_changed: true`` among its facts, so the
        pack decides who; a pack with no hold for that (or a grant that does not cover the
        rebased arguments) ends the call as an error the agent sees (never an overwrite).
        """
        run_id = config_run_id(config)
        pack = self.kit.svc.pack_for(run_id)
        call = ProposedCall.model_validate(current["call"])
        index = int(current["index"])

        def facts_of(spec: ToolSpec[Any], args: BaseModel) -> Mapping[str, FactValue]:
            facts = self.kit.svc.facts(run_id, self.kit.agent.name, spec, args)
            return {**facts, "record_changed": True}

        verdict = judge(
            spec.name,
            args.model_dump(mode="json"),
            tools=self.kit.agent.tools,
            grant=pack.agent_policy(self.kit.agent.name).grant,
            policy=PolicyCheck(rules=pack.rules, facts_of=facts_of),
        )
        if verdict.kind != "held":
            result = CallResult(
                index=index,
                tool=spec.name,
                args=args.model_dump(mode="json"),
                status="error",
                reason=f"{reason} (the policy pack holds no re-decision for {spec.name})",
            )
            return self.kit.finish_call(state, result)
        why = call.model_copy(update={"why": reason[:300]})
        request = self._request(state, run_id, why, verdict, index=index, pack=pack).model_copy(
            update={"approval_id": f"{run_id}-{index}-{spec.args_hash(args)[:8]}"}
        )
        approval_id = self._park(run_id, verdict, request)
        rebased = {
            **current,
            "args": verdict.args.model_dump(mode="json"),
            "approval_id": approval_id,
            "decided": None,
        }
        return {"current": rebased}

    def _park(self, run_id: str, held: Held, request: ApprovalRequest) -> str:
        """Park ``request`` for the held call and audit the hold; return the approval's id."""
        # Park, then audit: both idempotent, so a step replayed after a crash between
        # the two still records the hold exactly once.
        # The checkpoint this step runs from rides ahead of the park: a hold reviewers can see
        # always belongs to a durable state (a replanned step could not reach it otherwise).
        self.kit.svc.flush_checkpoint()
        self.kit.svc.approvals.park(request)
        hold_made(
            approval_id=request.approval_id, tool=held.tool,
            rule=held.policy.rule_id or "", role=request.required_role,
        )  # fmt: skip
        self.kit.audit(
            run_id,
            once=f"hold:{request.approval_id}",
            action="hold",
            outcome="held",
            detail={
                "tool": held.tool,
                "approval_id": request.approval_id,
                "rule": held.policy.rule_id,
                "role": request.required_role,
                "args_hash": request.args_hash,
                "deadline": request.deadline.isoformat(),
            },
        )
        return request.approval_id

    def _request(
        self,
        state: RunState,
        run_id: str,
        call: ProposedCall,
        held: Held,
        *,
        index: int,
        pack: PolicyPack,
    ) -> ApprovalRequest:
        """The approval request of a held call: the decision packet and what it pins."""
        spec, args, verdict, facts = held.spec, held.args, held.policy, held.facts
        ctx = self.kit.ctx(state, run_id, reads=f"packet:{index}")
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
            trace=current_traceparent(),
        )

    # -- hold ----------------------------------------------------------------------------
