"""carebound.kpi: process figures folded from the audit trail (pure, no I/O).

:func:`fold` turns audit events into per-day counters; :func:`build_report` turns the counters
of a span of days into the figures ``carebound report`` prints: runs started, completed,
paused and failed; cycle time; time waiting on people and on systems; exception and
touchless rates; approval latency, SLA adherence and override rate by rule, role and
reviewer; escalations and expiries; auto-fixed and held differences by field; the document
chase; the referral funnel and aging. :class:`carebound.state.kpi.KpiStore` keeps the
counters in Redis.
"""

from carebound.kpi._fold import FINAL, FUNNEL, Folded, bucket, bucket_value, fold, needed_keys
from carebound.kpi._report import AGING, DAILY, By, Span, build_report, human_seconds

REFERRAL_AGENTS = frozenset({"referral_intake", "referral_chaser", "packet_builder"})
"""The shipped agents whose runs each handle one referral (counted in the funnel)."""

__all__ = [
    "AGING",
    "DAILY",
    "FINAL",
    "FUNNEL",
    "REFERRAL_AGENTS",
    "By",
    "Folded",
    "Span",
    "bucket",
    "bucket_value",
    "build_report",
    "fold",
    "human_seconds",
    "needed_keys",
]
