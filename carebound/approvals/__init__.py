"""Holds: approval requests, decision packets, reviewer decisions, and their Redis store."""

from carebound.approvals._models import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalView,
    Approve,
    Decision,
    DecisionPacket,
    DecisionRecord,
    Edit,
    Escalate,
    PacketCheck,
    PacketFact,
    PinnedVersions,
    Reject,
    SourceRef,
)
from carebound.approvals._store import ApprovalStore, DecideResult, run_id_of

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "ApprovalStore",
    "ApprovalView",
    "Approve",
    "DecideResult",
    "Decision",
    "DecisionPacket",
    "DecisionRecord",
    "Edit",
    "Escalate",
    "PacketCheck",
    "PacketFact",
    "PinnedVersions",
    "Reject",
    "SourceRef",
    "run_id_of",
]
