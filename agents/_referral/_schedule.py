"""The business-day clock of the outreach schedule: when each attempt is due, and when an
unanswered request goes to a person (weekdays only; holidays are not modelled)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ._settings import OutreachSchedule

# --- business days ---------------------------------------------------------------------------


def add_business_days(moment: datetime, days: int) -> datetime:
    """``moment`` moved forward ``days`` weekdays, keeping the time of day (holidays are not
    modelled). Saturday plus one business day is Monday."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = moment
    left = days
    while left:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def attempt_times(first: datetime, schedule: OutreachSchedule) -> list[datetime]:
    """When each attempt is due, the first at ``first``."""
    n, window = schedule.attempts, schedule.window_business_days
    return [add_business_days(first, (k * window) // n) for k in range(n)]


def handover_time(first: datetime, schedule: OutreachSchedule) -> datetime:
    """When an unanswered request goes to a person: the end of the window."""
    return add_business_days(first, schedule.window_business_days)
