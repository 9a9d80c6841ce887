"""Plain-text formatting shared by the terminal renderers and the JSON outputs (no rich here)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound.approvals import ApprovalView
    from carebound.state.parked import ParkedRun

MASK = "•••"
"""What a viewer sees in place of PHI until they reveal it."""

__all__ = ["MASK", "ago", "detail_line", "due", "inline", "short_hash", "size", "span"]


def span(delta: timedelta) -> str:
    """A duration in at most two units: ``45s``, ``12m``, ``3h 20m``, ``23h``, ``2d 4h``."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes and hours < 10 else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def due(deadline: datetime, now: datetime) -> str:
    """A deadline relative to now: ``in 23h`` or ``overdue 2h``."""
    delta = deadline - now
    return f"in {span(delta)}" if delta >= timedelta(0) else f"overdue {span(delta)}"


def inbox_row(view: ApprovalView, now: datetime) -> dict[str, Any]:
    """A pending hold, as every inbox lists it (the CLI's ``--json``, the web inbox's
    ``/inbox.json`` and the API's ``GET /api/approvals``)."""
    request = view.request
    return {
        "approval_id": request.approval_id,
        "run_id": request.run_id,
        "agent": request.agent,
        "tool": request.tool,
        "risk": request.risk,
        "required_role": view.required_role,
        "deadline": view.deadline,
        "due": due(view.deadline, now),
        "overdue": view.deadline < now,
        "summary": request.packet.summary,
        "args_hash": request.args_hash,
        "two_person": request.two_person,
        "approvers": list(view.approvers),
    }


def parked_row(parked: ParkedRun, now: datetime) -> dict[str, Any]:
    """A run waiting for a system that is down, as every inbox lists it (the CLI's ``--json``,
    the web inbox's ``/inbox.json`` and the API's ``GET /api/approvals``): its id, agent, the
    system, when it retries and why (names and times only: no PHI)."""
    record = parked.record
    retry_at = record.wait_until
    return {
        "run_id": record.run_id,
        "agent": record.agent,
        "system": parked.system,
        "retry_at": retry_at.isoformat() if retry_at else None,
        "retry": due(retry_at, now) if retry_at else None,
        "reason": record.wait_reason,
        "handed_to": parked.handed_to,
    }


def ago(moment: datetime, now: datetime) -> str:
    """A past moment relative to now: ``5m ago`` (``in 5m`` if it is in the future)."""
    delta = now - moment
    return f"{span(delta)} ago" if delta >= timedelta(0) else f"in {span(delta)}"


def short_hash(value: str, length: int = 12) -> str:
    """The first characters of a hash, enough to tell two apart on screen."""
    return value[:length]


def size(n_bytes: int) -> str:
    """A byte count for people: ``812 B``, ``4.2 MB``."""
    value = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def inline(value: Any, limit: int = 60) -> str:
    """A value on one line, cut at ``limit`` characters; 64-hex hashes shortened."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        text = short_hash(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DETAIL_FIRST = ("tool", "decision", "outcome", "rule", "role", "status", "approval_id")


def detail_line(detail: Mapping[str, Any], limit: int = 80, value_limit: int = 28) -> str:
    """An audit event's detail as ``key=value`` pairs on one short line (each value cut at
    ``value_limit``, the line at ``limit``), the telling keys (tool, decision, rule, role, ...)
    first."""
    keys = [k for k in _DETAIL_FIRST if k in detail]
    keys += [k for k in detail if k not in keys]
    return inline(" ".join(f"{k}={inline(detail[k], value_limit)}" for k in keys), limit)
