"""The packet builder: prepare the decision a reviewer makes on a referral, and record it.

It reads the documents on file, assesses the referral against the pack (the document
requirements of ``settings.referral_chaser`` and the acceptance criteria of
``settings.packet_builder``), and proposes ``set_referral_status``: ``accepted`` for a live
order (recommending approval only when every check passes), ``rejected`` when the order was
revoked or already completed. Rule REF-1 holds that call for an intake coordinator, who reads the
packet built here: what is decided, the facts with their sources, every check with the pack
rule it applies, what is missing, the recommendation and its confidence, and what approve and
reject will do. Approve moves the referral Task as the performer; reject changes nothing.

Minimum necessary: the packet names the patient (name and birth date, to be sure of who it is),
the member id and the reason for referral, all marked PHI; no address, phone or other
identifiers. Its memory lives under ``memory["packet"]``.
"""

from __future__ import annotations

from carebound._agent import AgentDefinition

from ._packet import referral_packet
from ._planner import TOOLS, plan_packet

PACKET_BUILDER = AgentDefinition(
    name="packet_builder",
    version="1",
    description="Assesses a referral against the pack and asks an intake coordinator to accept "
    "or reject it, with a decision packet; records the decision on the referral Task.",
    tools=TOOLS,
    planner=plan_packet,
    packet=referral_packet,
    category="referral-decision",
)
