"""carebound.agents.packet_builder: the agent that assesses a referral against the acceptance
criteria and prepares the decision packet for accepting or rejecting it.

``_assess`` assesses a referral against the pack, ``_packet`` builds the reviewer's decision
packet, ``_planner`` proposes the calls, and ``_agent`` is the definition.
"""

from ._agent import PACKET_BUILDER
from ._assess import (
    Assessment,
    PayerCheck,
    assess,
    evidence_case,
    open_issues_of,
    payer_check,
)
from ._packet import referral_packet
from ._planner import MEMORY_KEY, TOOLS, packet_findings, plan_packet

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
