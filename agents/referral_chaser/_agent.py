"""The referral chaser's definition: its tools, planner and packet builder."""

from __future__ import annotations

from carebound._agent import AgentDefinition

from ._memory import TOOLS
from ._packet import chase_packet
from ._planner import plan_chase

REFERRAL_CHASER = AgentDefinition(
    name="referral_chaser",
    version="1",
    description="Finds what a referral still needs (documents by LOINC type and date, coverage, "
    "prior authorisation), files faxes by their text, and requests the rest from the referring "
    "office on the pack's schedule; unanswered requests go to intake staff.",
    tools=TOOLS,
    planner=plan_chase,
    packet=chase_packet,
    category="referral-documents",
)
