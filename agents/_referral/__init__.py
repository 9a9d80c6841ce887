"""What the referral agents (chaser, packet builder, intake) share and no tool needs: their
policy-pack settings, the business-day clock of the outreach schedule, the pack rule a packet
check cites, a chat model's reading of a faxed document (``second_opinion``), and a referral
drafted from an unstructured fax (``plan_fax_referral``, held by EXT-1).

The referral case, the referring office's contacts and documents as evidence are read by the
tools (``carebound.tools.referral``); the document rules are pure (``carebound.domain.documents``).
"""

from ._extract import EXTRACT_TEMPLATE, ReferralExtraction, plan_fax_referral
from ._extract_packet import fax_referral_packet
from ._reading import (
    CLASSIFY_TEMPLATE,
    DocumentReading,
    proposed_code,
    second_opinion,
)
from ._schedule import add_business_days, attempt_times, handover_time
from ._settings import (
    ChaseSettings,
    CitedRequirement,
    Criterion,
    IntakeSettings,
    OutreachSchedule,
    PacketSettings,
    ReferralSettingsError,
    chase_settings,
    intake_settings,
    packet_settings,
    rule_for_fact,
)

__all__ = [
    "CLASSIFY_TEMPLATE",
    "EXTRACT_TEMPLATE",
    "ChaseSettings",
    "CitedRequirement",
    "Criterion",
    "DocumentReading",
    "IntakeSettings",
    "OutreachSchedule",
    "PacketSettings",
    "ReferralExtraction",
    "ReferralSettingsError",
    "add_business_days",
    "attempt_times",
    "chase_settings",
    "fax_referral_packet",
    "handover_time",
    "intake_settings",
    "packet_settings",
    "plan_fax_referral",
    "proposed_code",
    "rule_for_fact",
    "second_opinion",
]
