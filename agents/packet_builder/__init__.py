"""carebound.agents.packet_builder: the agent that assesses a referral against the acceptance
criteria and prepares the decision packet for accepting or rejecting it.

``_agent`` is the agent (assessment, packet, planner, definition).
"""

from ._agent import (
    MEMORY_KEY,
    PACKET_BUILDER,
    TOOLS,
    Assessment,
    PayerCheck,
    assess,
    evidence_case,
    open_issues_of,
    packet_findings,
    payer_check,
    plan_packet,
    referral_packet,
)

__all__ = [
    "MEMORY_KEY",
    "PACKET_BUILDER",
    "TOOLS",
    "Assessment",
    "PayerCheck",
    "assess",
    "evidence_case",
    "open_issues_of",
    "packet_findings",
    "payer_check",
    "plan_packet",
    "referral_packet",
]
