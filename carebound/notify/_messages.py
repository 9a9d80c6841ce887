"""What a notification says, and how a webhook delivery is signed. Pure, no I/O.

A notice names the hold (approval id, run id), the rule, the tool, the role that must act, the
deadline and a link to the decision packet: ids and names only, never the packet's facts, the
tool's arguments or anything else about the patient.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

NoticeKind = Literal["hold", "due_soon", "escalated"]

_TITLES: dict[str, str] = {
    "hold": "New hold",
    "due_soon": "Due soon",
    "escalated": "Escalated",
}


class Notice(BaseModel):
    """One thing to tell one target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: NoticeKind
    approval_id: str
    run_id: str
    role: str
    rule: str
    tool: str
    deadline: str
    """ISO 8601, UTC."""
    link: str
    target: str
    """Which configured webhook or mailbox (``webhook:<hash>`` / ``email:<hash>``)."""

    @property
    def key(self) -> str:
        """Unique per hold, kind, role and target: a notice is sent once."""
        return f"{self.kind}:{self.approval_id}:{self.role}:{self.target}"

    def text(self) -> str:
        """The one-line message."""
        due = datetime.fromisoformat(self.deadline).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{_TITLES[self.kind]}: hold {self.approval_id} waits for {self.role} "
            f"(rule {self.rule}, {self.tool}), due {due}. Open: {self.link}"
        )

    def subject(self) -> str:
        """An e-mail subject."""
        return f"[carebound] {_TITLES[self.kind]}: hold {self.approval_id} for {self.role}"

    def webhook_body(self) -> bytes:
        """Slack- and Teams-compatible JSON (``text``), with the fields for other receivers."""
        fields = self.model_dump(exclude={"target"})
        return json.dumps({"text": self.text(), "carebound": fields}, sort_keys=True).encode()


def target_id(kind: Literal["webhook", "email"], address: str) -> str:
    """A stable id for a configured target (its address hashed: no address in the log)."""
    return f"{kind}:{hashlib.sha256(address.encode()).hexdigest()[:12]}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Carebound-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

    A receiver recomputes it with the shared secret and refuses a mismatch or an old ``t``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300
) -> bool:
    """Check a ``X-Carebound-Signature`` header (for receivers, and the tests)."""
    parts: dict[str, Any] = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)
