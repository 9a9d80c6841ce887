"""carebound.agents.referral_chaser: the agent that chases a referral's missing documents from the
referring office, files what comes back, and hands an unanswered request to a person.

``_memory`` is what it remembers between turns and how results update it, ``_planner`` its
rules, ``_packet`` the decision packets of its holds, ``_document_facts`` the packet facts of a
filed document, and ``_agent`` the definition that ties them together.
"""

from ._agent import REFERRAL_CHASER
from ._memory import MEMORY_KEY, TOOLS, ChaseMemory, missing_now
from ._packet import chase_packet
from ._planner import chase_findings, plan_chase

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
