"""Holds: approval requests, decision packets, reviewer decisions, and their Redis store."""

from carebound.approvals._edits import ArgChange, args_diff
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
    ModelSummary,
    PacketCheck,
    PacketFact,
    PinnedVersions,
    Reject,
    SourceRef,
    SummarySentence,
)
from carebound.approvals._store import ApprovalStore, DecideStepReply, run_id_of

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "ApprovalStore",
    "ApprovalView",
    "Approve",
    "ArgChange",
    "DecideStepReply",
    "Decision",
    "DecisionPacket",
    "DecisionRecord",
    "Edit",
    "Escalate",
    "ModelSummary",
    "PacketCheck",
    "PacketFact",
    "PinnedVersions",
    "Reject",
    "SourceRef",
    "SummarySentence",
    "args_diff",
    "run_id_of",
]
