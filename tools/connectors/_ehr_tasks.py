"""The referral Task permission table (SDOH Clinical Care IG): which role may set each Task
status, which statuses end a Task or need a reason, and the check applied to every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from carebound.fhir._bindings import TaskStatus
from carebound.tools.connectors._errors import (
    ConnectorError,
    TaskPermissionError,
)

TaskRole = Literal["requester", "performer"]
"""Who changes a referral Task: the organisation that asked, or the one that does the work."""


_REQUESTER: frozenset[TaskRole] = frozenset({"requester"})
_PERFORMER: frozenset[TaskRole] = frozenset({"performer"})

TASK_STATUS_SETTERS: Mapping[str, frozenset[TaskRole]] = {
    "draft": _REQUESTER,
    "requested": _REQUESTER,
    "entered-in-error": _REQUESTER,
    "accepted": _PERFORMER,
    "rejected": _PERFORMER,
    "in-progress": _PERFORMER,
    "on-hold": _PERFORMER,
    "failed": _PERFORMER,
    "completed": _PERFORMER,
    "cancelled": frozenset({"requester", "performer"}),
}
"""Which role may set each referral Task status (SDOH Clinical Care IG). ``received`` and
``ready`` are not used by referral Tasks, so no role may set them."""

TASK_TERMINAL_STATUSES = frozenset(
    {"completed", "cancelled", "failed", "rejected", "entered-in-error"}
)
"""Task statuses that end the Task; from these only ``entered-in-error`` may follow."""

TASK_STATUSES_NEEDING_REASON = frozenset({"failed", "rejected"})
"""Statuses that must say why (``Task.statusReason``)."""


def check_task_change(status: str, by_role: str, reason: str | None) -> None:
    """Refuse a Task status change the permission table forbids, or one missing its reason."""
    if status not in get_args(TaskStatus):
        raise ConnectorError(
            f"EHR: {status!r} is not a Task status",
            hint=f"use one of: {', '.join(sorted(TASK_STATUS_SETTERS))}",
        )
    if by_role not in get_args(TaskRole):
        raise ConnectorError(
            f"EHR: unknown Task role {by_role!r}", hint='use "requester" or "performer"'
        )
    allowed = TASK_STATUS_SETTERS.get(status, frozenset())
    if by_role not in allowed:
        who = " or the ".join(sorted(allowed)) if allowed else "no one (unused by referral Tasks)"
        raise TaskPermissionError(
            f"EHR: the {by_role} may not set a referral Task to {status!r}; only the {who} may",
            hint="requester: draft/requested/entered-in-error; performer: accepted/rejected/"
            "in-progress/on-hold/failed/completed; either: cancelled",
        )
    if status in TASK_STATUSES_NEEDING_REASON and not (reason and reason.strip()):
        raise ConnectorError(
            f"EHR: setting a Task to {status!r} needs a reason",
            hint="pass reason=... (stored as Task.statusReason)",
        )
