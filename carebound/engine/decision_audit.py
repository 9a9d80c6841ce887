"""A reviewer's decision in the audit trail: its fields, appended once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carebound.approvals import ApprovalView, Decision
from carebound.approvals._decision_audit import decision_detail
from carebound.approvals._edits import ArgChange
from carebound.audit import Actor
from carebound.state.trips import AuditAppend

if TYPE_CHECKING:  # the graph's hold node uses this module, and the core builds the graph
    from carebound.engine.core import Core


def decision_event(
    category: str,
    view: ApprovalView,
    decision: Decision,
    outcome: str,
    *,
    at: datetime,
    changes: Sequence[ArgChange] = (),
) -> dict[str, Any]:
    """The audit fields of a decision on ``view``."""
    request = view.request
    return {
        "time": at,
        "actor": Actor(kind="person", id=decision.reviewer, role=decision.role),
        "action": "decision",
        "category": category,
        "outcome": "pending" if outcome in ("partial", "escalated") else "success",
        "patient_ref": request.patient_ref,
        "detail": decision_detail(view, decision, outcome, changes),
    }


def audit_decision(
    core: Core,
    view: ApprovalView,
    decision: Decision,
    outcome: str,
    *,
    at: datetime,
    once: str | None = None,
    changes: Sequence[ArgChange] = (),
) -> None:
    """Append a decision's audit event now."""
    core.audit_log.record(
        view.request.run_id,
        once=once,
        **decision_event(
            core.category(view.request.agent), view, decision, outcome, at=at, changes=changes
        ),
    )


def final_decision_append(core: Core, view: ApprovalView) -> AuditAppend:
    """The final decision's audit event, to append once (idempotent on the approval id)."""
    return stored_decision_append(core.category(view.request.agent), view)


def stored_decision_append(category: str, view: ApprovalView) -> AuditAppend:
    """:func:`final_decision_append` for an agent of audit ``category``."""
    record = view.record
    assert record is not None and record.decision is not None
    outcome = "expired" if view.status == "expired" else "ok"
    return AuditAppend(
        run_id=view.request.run_id,
        once=f"decision:{view.request.approval_id}",
        fields=decision_event(
            category, view, record.decision, outcome, at=record.decided_at, changes=record.changes
        ),
    )


def ensure_decision_audited(core: Core, view: ApprovalView) -> None:
    """Write the final decision's audit event, once (idempotent on the approval id)."""
    record = view.record
    if record is None or record.decision is None:
        return
    append = final_decision_append(core, view)
    core.audit_log.record(append.run_id, once=append.once, **append.fields)
