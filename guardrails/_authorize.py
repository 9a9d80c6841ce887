"""Who may decide a hold: the reviewer must be in the pack's directory and hold the required
role, may not decide holds of a run they started (separation of duties), and must have seen the
arguments being decided (the args hash)."""

from __future__ import annotations

from carebound._errors import DecisionRefusedError
from carebound.approvals import ApprovalView, Decision
from carebound.guardrails._pack import PolicyPack


def authorize_decision(pack: PolicyPack, approval: ApprovalView, decision: Decision) -> None:
    """Raise :class:`DecisionRefusedError` unless ``decision`` may be applied to ``approval``."""
    reviewer = pack.reviewer(decision.reviewer)
    # A service token deciding as itself ('token:NAME') is no directory reviewer: the channel
    # that authenticated it checked its roles (carebound._tokens).
    via = decision.via
    service = via.kind == "service" and via.authenticated and via.principal == decision.reviewer
    if reviewer is None and not service:
        raise DecisionRefusedError(
            f"reviewer {decision.reviewer!r} is not in the reviewer directory of pack "
            f"{pack.name!r}",
            code="unknown_reviewer",
            hint="use an id listed by 'carebound reviewers'",
        )
    if reviewer is not None and decision.role not in reviewer.roles:
        raise DecisionRefusedError(
            f"reviewer {reviewer.id!r} does not hold role {decision.role!r} "
            f"(holds: {', '.join(reviewer.roles)})",
            code="wrong_role",
            hint="act in a role the reviewer holds",
        )
    if decision.role != approval.required_role:
        raise DecisionRefusedError(
            f"approval {approval.request.approval_id} needs role {approval.required_role!r}, "
            f"not {decision.role!r}",
            code="wrong_role",
            hint=f"ask a reviewer with role {approval.required_role!r}, or escalate",
        )
    if decision.reviewer == approval.request.requester:
        raise DecisionRefusedError(
            f"{decision.reviewer!r} started run {approval.request.run_id} and may not decide "
            "its holds (separation of duties)",
            code="own_run",
            hint="another reviewer must decide this hold",
        )
    if decision.args_hash != approval.request.args_hash:
        raise DecisionRefusedError(
            f"the decision was made on different arguments than approval "
            f"{approval.request.approval_id} now holds (stale args hash)",
            code="stale",
            hint="reload the approval and decide on what it shows now",
        )
    if decision.kind == "approve" and decision.reviewer in approval.approvers:
        raise DecisionRefusedError(
            f"{decision.reviewer!r} already approved {approval.request.approval_id}; "
            "this hold needs a second, different approver",
            code="same_approver",
            hint="a different reviewer must give the second approval",
        )
    if decision.kind == "escalate" and not any(decision.to_role in r.roles for r in pack.reviewers):
        raise DecisionRefusedError(
            f"no reviewer in pack {pack.name!r} holds role {decision.to_role!r}",
            code="wrong_role",
            hint="escalate to a role listed by 'carebound reviewers'",
        )
