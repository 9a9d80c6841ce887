"""The detail of a decision's audit event: the whole decision, flat and PHI-free.

An audit event's detail holds at most 32 flat values of at most 200 characters (see
``carebound.audit``), so a decision is written as::

    approval_id, decision, outcome, args_hash      what was decided, bound to which call
    role, to_role                                  the role decided in; an escalation's target
    reason, note                                   the reviewer's words (a long text is cut and
                                                   its sha256 kept)
    edited_args_hash, edit.<field>.before/.after   an edit, as a diff of the agent's proposal
    channel, principal, principal_kind,            how the decision arrived (Decision.via)
    authenticated, token
    approvers                                      a two-person hold's approvers so far

An argument the tool classifies as PHI is never copied: its before and after name where the
values are kept (the approval record) instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from carebound.approvals._edits import ArgChange
from carebound.approvals._models import ApprovalView, Decision

_LIMIT = 200
_MAX_CHANGES = 8
"""Changed fields written out one by one; more are counted in ``edit.more``."""


def decision_detail(
    view: ApprovalView, decision: Decision, outcome: str, changes: Sequence[ArgChange]
) -> dict[str, Any]:
    """The audit detail of ``decision`` on ``view`` (ended with ``outcome``)."""
    request = view.request
    via = decision.via
    detail: dict[str, Any] = {
        "approval_id": request.approval_id,
        "decision": decision.kind,
        "outcome": outcome,
        "args_hash": decision.args_hash,
        "role": decision.role,
        "channel": via.channel,
        "principal": _cut(via.principal or decision.reviewer),
        "principal_kind": via.kind,
        "authenticated": via.authenticated,
    }
    if via.token:
        detail["token"] = _cut(via.token)
    if decision.note:
        detail["note"] = _cut(decision.note)
    reason = getattr(decision, "reason", None)
    if reason:
        detail["reason"] = _cut(reason)
    to_role = getattr(decision, "to_role", None)
    if to_role:
        detail["to_role"] = to_role
    if request.two_person:
        approvers = view.record.approvers if view.record is not None else view.approvers
        detail["approvers"] = _cut(",".join(approvers))
    for change in changes[:_MAX_CHANGES]:
        key = f"edit.{change.field}"[:190]
        if change.phi:
            ref = f"ref:approval/{request.approval_id}"
            detail[f"{key}.before"] = f"{ref}#proposed.{change.field}"[:_LIMIT]
            detail[f"{key}.after"] = f"{ref}#decision.{change.field}"[:_LIMIT]
        else:
            detail[f"{key}.before"] = _value(change.before)
            detail[f"{key}.after"] = _value(change.after)
    if len(changes) > _MAX_CHANGES:
        detail["edit.more"] = len(changes) - _MAX_CHANGES
    return detail


def _value(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return _cut(text)


def _cut(text: str) -> str:
    """``text`` if it fits a detail value, else its start and the sha256 of the whole."""
    if len(text) <= _LIMIT:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:100]}… (sha256 {digest})"
