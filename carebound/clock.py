"""Where carebound gets the time from.

Every deadline, timer and budget reads a :class:`Clock`, so a scenario can run days of waiting
on a :class:`VirtualClock` in milliseconds while production uses the :class:`SystemClock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current time (timezone-aware UTC)."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the wall-clock time in UTC."""
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to; used by scenarios and tests."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime (e.g. with tzinfo=UTC)")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the virtual time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock never moves backwards")
        with self._lock:
            self._now += delta
            return self._now

    def advance_to(self, when: datetime) -> datetime:
        """Move the clock forward to ``when`` (no-op if it is already later)."""
        with self._lock:
            if when > self._now:
                self._now = when.astimezone(UTC)
            return self._now


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch, the unit of every time stored in Redis."""
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime for a stored millisecond timestamp."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
