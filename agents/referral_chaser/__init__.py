"""carebound.agents.referral_chaser: the agent that chases a referral's missing documents from the
referring office, files what comes back, and hands an unanswered request to a person.

``_agent`` is the agent (memory, planner, packet, definition); ``_document_facts`` turns a filed
document into the packet facts a reviewer reads.
"""

from ._agent import (
    MEMORY_KEY,
    REFERRAL_CHASER,
    TOOLS,
    ChaseMemory,
    chase_findings,
    chase_packet,
    missing_now,
    plan_chase,
)

__all__ = [
    "MEMORY_KEY",
    "REFERRAL_CHASER",
    "TOOLS",
    "ChaseMemory",
    "chase_findings",
    "chase_packet",
    "missing_now",
    "plan_chase",
]
