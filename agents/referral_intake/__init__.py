"""carebound.agents.referral_intake: referral intake end to end (chase the documents, reconcile
the records, decide, schedule), composed from the chaser's, the reconciler's and the packet
builder's planners, each keeping its own memory key.

``_agent`` is the agent (memory, the composed planner, packet, definition).
"""

from ._agent import MEMORY_KEY, REFERRAL_INTAKE, TOOLS, IntakeMemory, intake_packet, plan_intake

__all__ = ["MEMORY_KEY", "REFERRAL_INTAKE", "TOOLS", "IntakeMemory", "intake_packet", "plan_intake"]
