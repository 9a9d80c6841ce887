"""Who may decide a hold: the reviewer must be in the pack's directory and hold the required
role, may not decide holds of a run they started (separation of duties), must have seen the
arguments being decided (the args hash), may give a two-person hold only one of its approvals,
and may escalate it only along a path the pack declares for the rule that held it.

Every id is compared in its normal form (:func:`carebound._principal.normalize_reviewer_id`).
"""

from __future__ import annotations

from carebound._errors import DecisionRefusedError
from carebound._principal import InvalidIdentifierError, normalize_reviewer_id
from carebound.approvals import ApprovalRequest, ApprovalView, Decision
from carebound.guardrails._pack import PolicyPack


def approver_identity(decision: Decision) -> str:
    """Who an approval counts as for the two-person rule: the authenticated principal (a
    reviewer, or ``token:NAME`` for a service token acting as itself), else the normalised
    reviewer id. One principal naming two reviewers is still one approver."""
    via = decision.via
    if via.authenticated and via.principal:
        return normalize_reviewer_id(via.principal, what="principal")
    return normalize_reviewer_id(decision.reviewer)


def escalation_targets(pack: PolicyPack, request: ApprovalRequest) -> list[str]:
    """The roles a hold may be escalated to: those the pack declares for the rule that held
    it (``escalate_to``); none for a hold no rule of the pack names."""
    rule = pack.rule(request.rule_id) if request.rule_id else None
    return list(rule.escalate_to) if rule is not None else []


def check_escalation(pack: PolicyPack, approval: ApprovalView, to_role: str) -> None:
    """Raise :class:`DecisionRefusedError` (``wrong_role``) unless ``approval`` may be handed
    to ``to_role``: a declared target of its rule, other than its current role, that someone in
    the directory holds. The worker's timeout escalation is checked here too."""
    request = approval.request
    targets = [r for r in escalation_targets(pack, request) if r != approval.required_role]
    if to_role not in targets:
        allowed = ", ".join(targets) if targets else "none"
        raise DecisionRefusedError(
            f"approval {request.approval_id} (rule {request.rule_id or '-'}) may not be "
            f"escalated to {to_role!r}: pack {pack.name!r} declares escalation to: {allowed}",
            code="wrong_role",
            hint=f"escalate to one of: {allowed}"
            if targets
            else "decide it in its role; the pack declares no escalation for this rule",
        )
    if not any(to_role in r.roles for r in pack.reviewers):
        raise DecisionRefusedError(
            f"no reviewer in pack {pack.name!r} holds role {to_role!r}",
            code="wrong_role",
            hint="add a reviewer with that role to the pack's directory",
        )


def authorize_decision(pack: PolicyPack, approval: ApprovalView, decision: Decision) -> None:
    """Raise :class:`DecisionRefusedError` unless ``decision`` may be applied to ``approval``."""
    reviewer = pack.reviewer(decision.reviewer)
    # A service token deciding as itself ('token:NAME') is no directory reviewer: the channel
    # that authenticated it checked its roles (carebound._tokens).
    via = decision.via
    service = (
        via.kind == "service"
        and via.authenticated
        and _normal_or_raw(via.principal) == _normal_or_raw(decision.reviewer)
    )
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
    requester = _normal_or_raw(approval.request.requester)
    who = reviewer.id if reviewer is not None else decision.reviewer
    if requester in (who, approver_identity(decision)):
        raise DecisionRefusedError(
            f"{who!r} started run {approval.request.run_id} and may not decide "
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
    # An edit that changes the arguments starts a new count (the store decides that case).
    if (
        decision.kind == "approve"
        and approval.request.two_person
        and approver_identity(decision) in approval.approvers
    ):
        raise DecisionRefusedError(
            f"{approver_identity(decision)!r} already approved {approval.request.approval_id}; "
            "this hold needs a second, different approver",
            code="same_approver",
            hint="a different reviewer must give the second approval",
        )
    if decision.kind == "escalate":
        check_escalation(pack, approval, decision.to_role)


def _normal_or_raw(value: str) -> str:
    # A run stored before requesters were normalised may hold any spelling.
    try:
        return normalize_reviewer_id(value)
    except InvalidIdentifierError:
        return value
