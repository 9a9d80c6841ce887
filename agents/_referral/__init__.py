"""What the referral agents (chaser, packet builder, intake) share and no tool needs: their
policy-pack settings, the business-day clock of the outreach schedule, and the pack rule a packet
check cites.

The referral case, the referring office's contacts and documents as evidence are read by the
tools (``carebound.tools.referral``); the document rules are pure (``carebound.domain.documents``).
"""

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
    "ChaseSettings",
    "CitedRequirement",
    "Criterion",
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
    "rule_for_fact",
]
