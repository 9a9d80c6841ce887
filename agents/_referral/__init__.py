"""What the referral agents (chaser, packet builder, intake) share and no tool needs: their
policy-pack settings, the business-day clock of the outreach schedule, the pack rule a packet
check cites, and a chat model's reading of a faxed document (``second_opinion``).

The referral case, the referring office's contacts and documents as evidence are read by the
tools (``carebound.tools.referral``); the document rules are pure (``carebound.domain.documents``).
"""

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
    "ChaseSettings",
    "CitedRequirement",
    "Criterion",
    "DocumentReading",
    "IntakeSettings",
    "OutreachSchedule",
    "PacketSettings",
    "ReferralSettingsError",
    "add_business_days",
    "attempt_times",
    "chase_settings",
    "handover_time",
    "intake_settings",
    "packet_settings",
    "proposed_code",
    "rule_for_fact",
    "second_opinion",
]
