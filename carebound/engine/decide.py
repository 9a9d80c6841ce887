"""A reviewer's decision: authorise -> re-gate an edit -> decide-and-take -> outcome.

The decide step and, should it end the hold, the run's lease (with the drive's reads and the
decision's audit event) go in one round trip (``Trips.decide_and_take``), so a reviewer's
decision reaches the run's next stop in a handful of round trips. Exactly one concurrent
decider wins; a losing or partial decider writes no audit event and gives the lease back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ValidationError

from carebound._errors import DecisionRefusedError, NotFoundError
from carebound._principal import normalize_reviewer_id
from carebound.approvals import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalView,
    Decision,
    DecisionRecord,
    Edit,
    Escalate,
    run_id_of,
)
from carebound.approvals._edits import ArgChange, args_diff, invalid_edit_error
from carebound.clock import from_ms, to_ms
from carebound.engine.core import Core, already, no_approval
from carebound.engine.decision_audit import audit_decision, final_decision_append
from carebound.engine.drive import Driver
from carebound.engine.results import DecideResult
from carebound.guardrails import (
    PolicyPack,
    approver_identity,
    authorize_decision,
    check_permission,
    evaluate_rules,
)
from carebound.state.trips import DecideStep
from carebound.tools import ToolContext

DECIDED_STATUS: dict[str, ApprovalStatus] = {
    "approve": "approved",
    "edit": "edited",
    "reject": "rejected",
}
"""The status a decision of each kind gives its approval (an escalation leaves it pending)."""

_REFUSALS: dict[str, tuple[str, str, str]] = {
    "stale": (
        "approval {id} changed since it was read (stale args hash)",
        "stale",
        "reload the approval and decide again",
    ),
    "wrong_role": (
        "approval {id} now needs role {role!r}",
        "wrong_role",
        "it was escalated; ask a reviewer with that role",
    ),
    "same_approver": (
        "{approver!r} already approved {id} with these arguments",
        "same_approver",
        "a second, different reviewer must approve",
    ),
}
"""The decide step's refusals: message, code, hint."""


def escalation_deadline(view: ApprovalView, now: datetime) -> datetime:
    """The deadline of a hold escalated at ``now``: as long again as it first had."""
    return now + (view.deadline - view.request.created_at)


class Decider:
    """Applies reviewers' decisions for one Runner."""

    def __init__(self, core: Core, driver: Driver) -> None:
        self.core = core
        self.driver = driver

    def approval(self, approval_id: str) -> ApprovalView:
        """One approval by id; raises :class:`NotFoundError`."""
        view = self.core.approvals.get(approval_id)
        if view is None:
            raise no_approval(approval_id)
        return view

    def _approval_and_pinned(self, approval_id: str) -> ApprovalView:
        """``approval``, with the run's pinned pack and case read in the same round trip
        when this process has not cached them yet."""
        try:
            run_id = run_id_of(approval_id)
        except ValueError:
            return self.approval(approval_id)  # raises NotFoundError
        cold = self.core.is_cold(run_id)
        view, pinned = self.core.trips.approval_with_pinned(approval_id, run_id, cold=cold)
        if view is None:
            raise no_approval(approval_id)
        self.core.remember_pinned(run_id, pinned)
        return view

    def decide(self, approval_id: str, decision: Decision) -> DecideResult:
        """See :meth:`carebound.Runner.decide`."""
        core = self.core
        view = self._approval_and_pinned(approval_id)
        run_id = view.request.run_id
        pack = core.pack_for(run_id)
        if view.status != "pending" and view.record is not None:
            raise already(approval_id, view.record.decided_by, view.record.decided_at)
        decision = decision.model_copy(
            update={"reviewer": normalize_reviewer_id(decision.reviewer)}
        )
        authorize_decision(pack, view, decision)
        approver = approver_identity(decision)
        edited, changes = self._edit_of(view, decision, pack)
        now = core.clock.now()
        status: ApprovalStatus = DECIDED_STATUS.get(decision.kind, "pending")
        new_deadline = None
        if isinstance(decision, Escalate):
            new_deadline = escalation_deadline(view, now)
        decided = view.model_copy(
            update={
                "status": status,
                "record": DecisionRecord(
                    status=status,
                    decision=decision,
                    decided_by=decision.reviewer,
                    decided_at=from_ms(to_ms(now)),  # as stored: ms precision
                    approvers=_approvers_after(view, decision, approver, edited),
                    changes=changes,
                ),
            }
        )
        step = DecideStep(
            approval_id=approval_id, decision=decision, now=now, status=status,
            escalate_deadline=new_deadline, decide_id=uuid.uuid4().hex, approver=approver,
            edited=edited, changes=changes,
        )  # fmt: skip
        audit = final_decision_append(core, decided) if status != "pending" else None
        result, acquired = core.trips.decide_and_take(
            run_id, step, cold=core.is_cold(run_id), audit=audit
        )
        if acquired is not None:
            acquired = self.driver.accept(run_id, acquired)
        outcome = result.outcome
        if outcome != "ok" and acquired is not None and acquired.lease is not None:
            core.leases.release(acquired.lease)
        if outcome == "decided":
            raise already(approval_id, result.decided_by or "?", result.decided_at)
        if outcome in _REFUSALS:
            message, code, hint = _REFUSALS[outcome]
            text = message.format(id=approval_id, role=result.current_role, approver=approver)
            raise DecisionRefusedError(text, code=code, hint=hint)
        if outcome == "missing":
            raise NotFoundError(f"no approval {approval_id!r}")
        if outcome in ("partial", "escalated"):
            audited_view = decided if outcome == "partial" else view  # with its approvers
            audit_decision(core, audited_view, decision, outcome, at=now, changes=changes)
        # A final decision is audited in the round trip above when it won, else by the drive
        # that resumes the run, under the run's lease, exactly once even if this process dies
        # right after the decision was stored.
        if outcome == "partial":
            return DecideResult(
                outcome="awaiting_second_approver", run=core.get(run_id), changes=changes
            )
        if outcome == "escalated":
            assert isinstance(decision, Escalate) and new_deadline is not None
            core.approvals.reindex(approval_id, view.required_role, decision.to_role, new_deadline)
            return DecideResult(outcome="escalated", run=core.get(run_id))
        run = self.driver.drive(run_id, lease_wait_s=5.0, decided=decided, acquired=acquired)
        return DecideResult(outcome="decided", run=run, changes=changes)

    def _edit_of(
        self, view: ApprovalView, decision: Decision, pack: PolicyPack
    ) -> tuple[ApprovalRequest | None, list[ArgChange]]:
        """What an approve or edit does to the call's arguments: the request a two-person hold
        keeps pending with an edit's new arguments (None: none), and the changes from the
        agent's proposal to the arguments that will run."""
        request = view.request
        if isinstance(decision, Edit):
            spec = self.core.agent(request.agent).tools[request.tool]
            args = self._check_edit(view, decision, pack)
            after, new_hash = args.model_dump(mode="json"), spec.args_hash(args)
        elif decision.kind == "approve":
            after, new_hash = request.args, request.args_hash
        else:
            return None, []
        proposed = request.original_args if request.original_args is not None else request.args
        spec_or_none = self.core.agent(request.agent).tools.get(request.tool)

        def is_phi(name: str) -> bool:
            if spec_or_none is None:
                return True  # a tool this install does not know: assume the worst
            return bool(spec_or_none.phi) and name not in spec_or_none.public_args

        changes = args_diff(proposed, after, is_phi=is_phi)
        edited = None
        if request.two_person and new_hash != request.args_hash:
            edited = request.model_copy(
                update={"args": after, "args_hash": new_hash, "original_args": proposed}
            )
        return edited, changes

    def _check_edit(self, view: ApprovalView, decision: Edit, pack: PolicyPack) -> BaseModel:
        """The edited arguments, validated and checked against the grant and the policy."""
        request = view.request
        definition = self.core.agent(request.agent)
        spec = definition.tools[request.tool]
        try:
            args: BaseModel = spec.validate(decision.args)
        except ValidationError as exc:
            raise invalid_edit_error(spec.name, spec.args_schema, exc) from None
        permission = check_permission(pack.agent_policy(definition.name).grant, spec, args)
        if not permission.allowed:
            raise DecisionRefusedError(
                f"the edit goes beyond the agent's grant: {permission.reason}",
                code="edit_beyond_grant",
                hint="edit within what the agent may do",
            )
        ctx = ToolContext(
            run_id=request.run_id,
            agent=definition.name,
            now=self.core.clock.now(),
            idempotency_key=spec.idempotency_key(request.run_id, args),
            world=self.core.world_for(request.run_id),
            case=self.core.case_for(request.run_id),
        )
        verdict = evaluate_rules(pack.rules, spec.name, spec.compute_facts(ctx, args))
        if verdict.decision == "deny":
            raise DecisionRefusedError(
                f"the edit is denied by policy rule {verdict.rule_id}: {verdict.rule_text}",
                code="edit_beyond_grant",
                hint="edit within the policy",
            )
        if verdict.decision == "hold" and verdict.role != decision.role:
            raise DecisionRefusedError(
                f"the edited call needs role {verdict.role!r} (rule {verdict.rule_id})",
                code="wrong_role",
                hint=f"ask a reviewer with role {verdict.role!r}",
            )
        return args


def _approvers_after(
    view: ApprovalView, decision: Decision, approver: str, edited: ApprovalRequest | None
) -> list[str]:
    """A two-person hold's approvers once ``decision`` is counted (as the store counts them):
    an edit that changed the arguments starts the count again."""
    if not view.request.two_person or decision.kind not in ("approve", "edit"):
        return list(view.approvers)
    return [approver] if edited is not None else [*view.approvers, approver]
