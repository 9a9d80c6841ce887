"""A reviewer's decision: authorise -> re-gate an edit -> decide-and-take -> outcome.

The decide step and, should it end the hold, the run's lease (with the drive's reads and the
decision's audit event) go in one round trip (``Trips.decide_and_take``), so a reviewer's
decision reaches the run's next stop in a handful of round trips. Exactly one concurrent
decider wins; a losing or partial decider writes no audit event and gives the lease back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from carebound._errors import DecisionRefusedError, NotFoundError, echo_id
from carebound._principal import normalize_reviewer_id
from carebound.approvals import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalView,
    Decision,
    DecisionRecord,
    Edit,
    Escalate,
    Reject,
    run_id_of,
)
from carebound.approvals._edits import ArgChange, args_diff
from carebound.clock import from_ms, to_ms
from carebound.engine.core import Core, agent_not_installed, already, no_approval
from carebound.engine.decision_audit import audit_decision, final_decision_append
from carebound.engine.drive import Driver
from carebound.engine.results import DecideResult
from carebound.engine.tracing import decision_made
from carebound.guardrails import (
    InvalidArgs,
    PolicyCheck,
    PolicyPack,
    approver_identity,
    authorize_decision,
    judge,
)
from carebound.state.trips import DecideStep
from carebound.tools import FactValue, ToolSpec
from carebound.tools.connectors import SystemUnavailableError

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
        view = self._approval_and_pinned(approval_id)
        pack = self.core.pack_for(view.request.run_id)
        if view.status != "pending" and view.record is not None:
            raise already(approval_id, view.record.decided_by, view.record.decided_at)
        self._check_installed(view)
        decision = decision.model_copy(
            update={"reviewer": normalize_reviewer_id(decision.reviewer)}
        )
        authorize_decision(pack, view, decision)
        approver = approver_identity(decision)
        edited, changes = self._edit_of(view, decision, pack)
        status: ApprovalStatus = DECIDED_STATUS.get(decision.kind, "pending")
        return self._apply(
            view, decision, status=status, approver=approver, edited=edited, changes=changes
        )

    def on_deadline(self, view: ApprovalView, decision: Escalate | Reject) -> DecideResult | None:
        """The deadline sweep's decision on an overdue hold, through the same step as a
        reviewer's: an escalation (the caller checked the pack declares its path) or, for a
        :class:`Reject`, the hold's expiry (status ``expired``). No reviewer to authorise: the
        decision is carebound's own (``via`` the worker). None: the hold was decided or
        changed meanwhile (by a reviewer, or another process's sweep)."""
        status: ApprovalStatus = "pending" if isinstance(decision, Escalate) else "expired"
        try:
            self._check_installed(view)  # else left for a process that has the agent
            return self._apply(view, decision, status=status, approver=decision.reviewer)
        except (DecisionRefusedError, NotFoundError):
            return None

    def _check_installed(self, view: ApprovalView) -> None:
        """Refuse a decision on a hold of an agent this process does not have, before anything
        is stored: deciding needs the agent (its tools, its audit category, its resumed run).

        Raises:
            DecisionRefusedError: code ``agent_not_installed``.
        """
        if view.request.agent not in self.core.agents:
            raise agent_not_installed(
                view.request.agent,
                f"approval {view.request.approval_id} stays pending; the decision was not recorded",
            )

    def _apply(
        self,
        view: ApprovalView,
        decision: Decision,
        *,
        status: ApprovalStatus,
        approver: str,
        edited: ApprovalRequest | None = None,
        changes: list[ArgChange] | None = None,
    ) -> DecideResult:
        """Store an authorised decision (one concurrent decider wins) and take the outcome: a
        final one drives the run on, an escalation moves the hold to its new role's inbox."""
        core = self.core
        changes = changes or []
        approval_id, run_id = view.request.approval_id, view.request.run_id
        now = core.clock.now()
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
        queued = core.drive_mode == "queue"
        final = status != "pending"
        # Queue mode: store the decision only; the worker that drives the run audits it.
        audit = final_decision_append(core, decided) if final and not queued else None
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
            raise NotFoundError(f"no approval {echo_id(approval_id)}")
        request = view.request
        decision_made(
            request.trace, approval_id=approval_id, rule=request.rule_id,
            role=view.required_role, decision=decision.kind, outcome=outcome,
            wait_s=(now - request.created_at).total_seconds(),
        )  # fmt: skip
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
        if queued:
            core.approvals.unindex(approval_id, view.required_role)
            return DecideResult(
                outcome="decided", run=self.driver.dispatch(run_id, "decision"), changes=changes
            )
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
            spec, args = self._check_edit(view, decision, pack)
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

    def _check_edit(
        self, view: ApprovalView, decision: Edit, pack: PolicyPack
    ) -> tuple[ToolSpec[Any], BaseModel]:
        """The held call's tool and the edited arguments, judged by the gate like a proposed
        call: valid, within the grant, and not denied or held for another role by the policy."""
        request = view.request
        definition = self.core.agent(request.agent)
        services = self.core.services

        def facts_of(spec: ToolSpec[Any], args: BaseModel) -> Mapping[str, FactValue]:
            return services.facts(request.run_id, definition.name, spec, args)

        try:
            verdict = judge(
                request.tool,
                decision.args,
                tools=definition.tools,
                grant=pack.agent_policy(definition.name).grant,
                policy=PolicyCheck(rules=pack.rules, facts_of=facts_of),
            )
        except SystemUnavailableError as exc:
            raise DecisionRefusedError(
                f"cannot check the edited call: {exc.message}; the decision was not recorded",
                code="system_unavailable",
                hint=f"decide again once {exc.system} is back (approving or rejecting the call "
                "as proposed needs no check)",
            ) from None
        if verdict.kind == "invalid_args":
            raise invalid_edit_error(verdict)
        if verdict.kind in ("unknown_tool", "over_budget"):
            raise DecisionRefusedError(
                f"the held call's tool {request.tool!r} is not known to agent {definition.name!r} "
                "in this install",
                code="unknown_tool",
                hint="install the agent's version the run was started with, or reject the call",
            )
        if verdict.kind == "denied" and verdict.by == "grant":
            raise DecisionRefusedError(
                f"the edit goes beyond the agent's grant: {verdict.reason}",
                code="edit_beyond_grant",
                hint="edit within what the agent may do",
            )
        if verdict.kind == "denied":
            raise DecisionRefusedError(
                f"the edit is denied by {verdict.reason}",
                code="edit_beyond_grant",
                hint="edit within the policy",
            )
        if verdict.kind == "held" and verdict.policy.role != decision.role:
            role, rule = verdict.policy.role, verdict.policy.rule_id
            raise DecisionRefusedError(
                f"the edited call needs role {role!r} (rule {rule})",
                code="wrong_role",
                hint=f"ask a reviewer with role {role!r}",
            )
        assert verdict.kind in ("held", "allowed")
        return verdict.spec, verdict.args


def _approvers_after(
    view: ApprovalView, decision: Decision, approver: str, edited: ApprovalRequest | None
) -> list[str]:
    """A two-person hold's approvers once ``decision`` is counted (as the store counts them):
    an edit that changed the arguments starts the count again."""
    if not view.request.two_person or decision.kind not in ("approve", "edit"):
        return list(view.approvers)
    return [approver] if edited is not None else [*view.approvers, approver]


def invalid_edit_error(verdict: InvalidArgs) -> DecisionRefusedError:
    """The refusal of edited arguments the gate found invalid: an unknown field is named with
    the fields that exist, every other problem with its path and message."""
    tool = verdict.tool
    fields = ", ".join(sorted(verdict.spec.args_schema.model_fields)) or "(none)"
    hint = (
        f"{tool} takes the fields: {fields}"
        if verdict.unknown_fields
        else "fix the values given with --set (carebound show prints the call's arguments)"
    )
    return DecisionRefusedError(
        f"edited arguments for {tool} are invalid: {'; '.join(verdict.problems)}"
        + (f" ({tool} takes: {fields})" if verdict.unknown_fields else ""),
        code="invalid_edit",
        hint=hint,
    )
