"""The process figures' store: per-day counters folded from the global audit index.

The figures are a materialised view of the audit trail (the source of truth). Each fold reads
the index from the last folded entry on (:meth:`KpiStore.catch_up`), folds the new events
(:func:`carebound.kpi.fold`) and applies the counters, the open state and the new cursor in
one Lua script that first checks the cursor is unchanged: two processes folding at once never
count an event twice, and a crash mid-fold leaves the figures as they were. Appending an
event costs nothing extra: the folding happens when the figures are read (``carebound
report``, the dashboard) and in the worker's sweep, over only the events since last time.

Layout (all in the ``{kpi}`` hash slot): ``meta`` (the cursor), ``open`` (runs and holds in
progress), ``days`` (a sorted set of the day hashes, scored by day number) and one hash per
day, ``day:YYYY-MM-DD``, of ``metric|dim=value[|b=N]`` counters, and ``totals``, the same
counters over all days.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import date
from typing import Any

import redis
from redis.cluster import RedisCluster

from carebound.kpi._fold import fold, needed_keys
from carebound.kpi._report import DAILY, DAILY_FIELDS, Span, every_day
from carebound.state import audit_index
from carebound.state.keys import DEFAULT_PREFIX, audit_index_key, kpi_key, text
from carebound.state.lua import script

Client = redis.Redis | RedisCluster

_APPLY = script("kpi_apply")
_SUM = script("kpi_sum")
BATCH = 200
"""Audit index entries folded per round of :meth:`KpiStore.catch_up`."""


class KpiStore:
    """Per-day process figures for one key prefix."""

    def __init__(
        self, client: Client, *, prefix: str = DEFAULT_PREFIX, referral_agents: frozenset[str]
    ) -> None:
        self._client = client
        self._referral_agents = referral_agents
        self._index = audit_index_key(prefix)
        self._meta = kpi_key(prefix, "meta")
        self._open = kpi_key(prefix, "open")
        self._days = kpi_key(prefix, "days")
        self._totals = kpi_key(prefix, "totals")
        self._prefix = prefix

    def _day_key(self, day: str) -> str:
        return kpi_key(self._prefix, "day", day)

    def catch_up(self, *, limit: int | None = None) -> int:
        """Fold the audit events appended since the last fold; returns how many were folded
        (at most about ``limit`` when given)."""
        folded = 0
        while limit is None or folded < limit:
            cursor = self._client.hget(self._meta, "cursor")
            start = f"({text(cursor)}" if cursor is not None else "-"
            entries = self._client.xrange(self._index, min=start, count=BATCH)
            if not entries:
                return folded
            events = [
                _event(raw) for _, raw in audit_index.resolve(self._client, self._prefix, entries)
            ]
            keys = needed_keys(events)
            values = self._client.hmget(self._open, keys) if keys else []
            state = {
                k: (text(v) if v is not None else None) for k, v in zip(keys, values, strict=True)
            }
            out = fold(events, state, referral_agents=self._referral_agents)
            last = text(entries[-1][0])
            if self._apply(text(cursor) if cursor is not None else "", last, out):
                folded += len(entries)
        return folded

    def _apply(self, expected: str, new: str, out: Any) -> bool:
        days = sorted({day for day, _ in out.increments})
        keys = [self._meta, self._open, self._days, self._totals]
        keys += [self._day_key(d) for d in days]
        slot = {day: i + 5 for i, day in enumerate(days)}
        args: list[Any] = [expected, new, len(out.put)]
        for field, value in out.put.items():
            args += [field, value]
        args.append(len(out.drop))
        args += sorted(out.drop)
        args += [date.fromisoformat(d).toordinal() for d in days]
        totals: Counter[str] = Counter()
        for (day, field), amount in sorted(out.increments.items()):
            if amount:
                args += [slot[day], field, amount]
                totals[field] += amount
        for field, amount in sorted(totals.items()):
            if amount:
                args += [4, field, amount]
        return bool(_APPLY(self._client, keys, args))

    def days(self, since: date | None = None, until: date | None = None) -> list[str]:
        """The days with figures, oldest first, within ``since``..``until`` (inclusive)."""
        low = since.toordinal() if since else "-inf"
        high = until.toordinal() if until else "+inf"
        keys = self._client.zrangebyscore(self._days, low, high)
        prefix = self._day_key("")
        return [text(k)[len(prefix) :] for k in keys]

    def span(self, since: date | None = None, until: date | None = None) -> Span:
        """The counters of the days within ``since``..``until``, summed on the server (one
        round trip, each counter read once), with the daily series."""
        days = self.days(since, until)
        if not days:
            return Span([], {}, {m: [] for m in DAILY})
        flat, per_day = _SUM(self._client, [self._day_key(d) for d in days], list(DAILY_FIELDS))
        totals = {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        have = {day: [int(v[k]) for v in per_day] for k, day in enumerate(days)}
        every = every_day(days[0], days[-1])
        zero = [0] * len(DAILY)
        daily = {m: [have.get(d, zero)[j] for d in every] for j, m in enumerate(DAILY)}
        return Span(every, totals, daily)

    def totals(self) -> dict[str, int]:
        """The counters summed over every day (what ``/metrics`` exports)."""
        return _ints(self._client.hgetall(self._totals))


def _event(raw: bytes | str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(text(raw))
    return event


def _ints(reply: Mapping[Any, Any]) -> dict[str, int]:
    return {text(k): int(v) for k, v in reply.items()}
