"""Process figures from the per-day counters: rates, percentiles and breakdowns. Pure."""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from carebound.kpi._fold import FUNNEL, bucket_value

By = Literal["agent", "rule", "role", "reviewer"]
"""The breakdowns ``carebound report --by`` offers."""

AGING = ((0, 2, "0-2d"), (3, 7, "3-7d"), (8, 14, "8-14d"), (15, None, "15d+"))
"""Referral aging buckets: open referrals by days since they came in."""


@functools.lru_cache(maxsize=65_536)
def _split(name: str) -> tuple[str, str, str, int | None]:
    """``metric|dim=value[|b=N]`` -> (metric, dim, value, bucket). Cached: the same few
    thousand names recur on every day."""
    metric, *rest = name.split("|")
    dim, _, value = rest[0].partition("=")
    b = int(rest[1][2:]) if len(rest) > 1 else None
    return metric, dim, value, b


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentiles(hist: Mapping[int, int]) -> dict[str, float | int | None]:
    n = sum(hist.values())
    out: dict[str, float | int | None] = {"n": n, "p50": None, "p90": None}
    if not n:
        return out
    for label, q in (("p50", 0.5), ("p90", 0.9)):  # nearest rank, on bucket values
        seen = 0
        for b in sorted(hist):
            seen += hist[b]
            if seen >= q * n:
                out[label] = round(bucket_value(b), 1)
                break
    return out


DAILY = ("runs.started", "runs.ended", "holds", "decisions", "overrides", "referrals.open")
"""The figures kept as a series, one value per day."""
DAILY_FIELDS = tuple(f"{metric}|all=*" for metric in DAILY)


@dataclass(frozen=True)
class Span:
    """The counters of a span of days: summed, and per day for :data:`DAILY`."""

    days: list[str]
    """Every day from the first to the last, days without figures included."""
    totals: Mapping[str, int]
    daily: Mapping[str, list[int]]
    """``DAILY`` metric -> its value on each of ``days``."""

    @classmethod
    def of(cls, days: Mapping[str, Mapping[str, int]]) -> Span:
        """The span of per-day counters held in memory (``day -> counters``)."""
        every = _every_day(days)
        totals: Counter[str] = Counter()
        for fields in every.values():
            totals.update(fields)
        daily = {m: [every[d].get(f"{m}|all=*", 0) for d in every] for m in DAILY}
        return cls(list(every), dict(totals), daily)


class _Totals:
    """A span's counters by metric -> dim -> value, and its histograms."""

    def __init__(self, span: Span) -> None:
        self.counts: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self.hists: dict[str, dict[str, dict[str, Counter[int]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(Counter))
        )
        for name, amount in span.totals.items():
            metric, dim, value, b = _split(name)
            if b is not None:
                self.hists[metric][dim][value][b] += amount
            else:
                self.counts[metric][dim][value] += amount
        self.daily = span.daily
        self.open_by_day: Counter[str] = Counter(
            dict(zip(span.days, span.daily.get("referrals.open", []), strict=False))
        )

    def total(self, metric: str) -> int:
        return self.counts[metric]["all"]["*"]

    def by(self, metric: str, dim: str) -> Counter[str]:
        return self.counts[metric][dim]

    def hist(self, metric: str, dim: str = "all", value: str = "*") -> Counter[int]:
        return self.hists[metric][dim][value]


def human_seconds(value: float | None) -> str:
    """A duration for people: ``42 s``, ``3.5 min``, ``2.1 h``, ``6.9 d`` (``-`` for none)."""
    if value is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:g} s"


def every_day(first: str, last: str) -> list[str]:
    """Every day from ``first`` to ``last`` (ISO dates), both included."""
    start, end = date.fromisoformat(first).toordinal(), date.fromisoformat(last).toordinal()
    return [date.fromordinal(n).isoformat() for n in range(start, end + 1)]


def _every_day(days: Mapping[str, Mapping[str, int]]) -> dict[str, Mapping[str, int]]:
    """``days`` with the days between them that have no figures filled in (empty)."""
    if not days:
        return {}
    return {day: days.get(day, {}) for day in every_day(min(days), max(days))}


def build_report(span: Span, *, by: By | None = None, today: date) -> dict[str, Any]:
    """The report of a span of days, JSON-ready (``daily`` series run over every day from
    the first to the last; days without figures count 0)."""
    t = _Totals(span)
    ended = t.by("runs.ended", "status")
    ended_total = sum(ended.values())
    decisions = t.total("decisions")
    sla_met, sla_missed = t.total("sla.met"), t.total("sla.missed")
    requests = t.total("chase.requests")
    report: dict[str, Any] = {
        "days": span.days,
        "runs": {
            "started": t.total("runs.started"),
            "completed": ended["completed"],
            "failed": ended["failed"] + ended["quarantined"],
            "paused": t.total("runs.paused"),
            "ended": dict(sorted(ended.items())),
            "exception_rate": _rate(t.total("runs.exception"), ended_total),
            "touchless_rate": _rate(t.total("runs.touchless"), ended_total),
        },
        "cycle_time_s": _percentiles(t.hist("cycle")),
        "waiting_s": {
            "people": t.total("wait.people.seconds"),
            "systems": t.total("wait.systems.seconds"),
        },
        "approvals": {
            "holds": t.total("holds"),
            "decisions": decisions,
            "latency_s": _percentiles(t.hist("latency")),
            "sla": {
                "met": sla_met,
                "missed": sla_missed,
                "adherence": _rate(sla_met, sla_met + sla_missed),
            },
            "overrides": t.total("overrides"),
            "override_rate": _rate(t.total("overrides"), decisions),
            "escalations": t.total("escalations"),
            "expiries": t.total("expiries"),
        },
        "fixes": {
            "auto": dict(sorted(t.by("fixes.auto", "field").items())),
            "held": dict(sorted(t.by("fixes.held", "field").items())),
        },
        "chase": {
            "requests": requests,
            "attempts": t.total("chase.attempts"),
            "attempts_per_request": (
                round(t.total("chase.attempts") / requests, 2) if requests else None
            ),
            "replies": t.total("chase.replies"),
            "reply_time_s": _percentiles(t.hist("chase.reply")),
            "success_rate": _rate(t.by("chase.closed", "status")["completed"], requests),
        },
        "funnel": {stage: t.total(f"funnel.{stage}") for stage in FUNNEL},
        "referral_aging": _aging(t.open_by_day, today),
        "daily": {name: list(t.daily.get(name, [])) for name in DAILY if name != "referrals.open"},
    }
    if by is not None:
        report["by"] = {by: _breakdown(t, by)}
    return report


def _aging(open_by_day: Mapping[str, int], today: date) -> dict[str, int]:
    out = {label: 0 for _, _, label in AGING}
    for day, count in open_by_day.items():
        age = max(0, (today - date.fromisoformat(day)).days)
        for low, high, label in AGING:
            if age >= low and (high is None or age <= high):
                out[label] += count
                break
    return out


def _breakdown(t: _Totals, by: By) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    if by == "agent":
        for agent, n in t.by("runs.started", "agent").items():
            rows[agent]["started"] = n
        for agent, n in t.by("runs.ended", "agent").items():
            rows[agent]["ended"] = n
            rows[agent]["exception_rate"] = _rate(t.by("runs.exception", "agent")[agent], n)
            rows[agent]["cycle_time_s"] = _percentiles(t.hist("cycle", "agent", agent))
        return dict(sorted(rows.items()))
    for value, n in t.by("holds", by).items():
        rows[value]["holds"] = n
    for value, n in t.by("decisions", by).items():
        overrides = t.by("overrides", by)[value]
        rows[value].update(decisions=n, overrides=overrides, override_rate=_rate(overrides, n))
    if by in ("role", "rule"):
        for value in list(rows) + list(t.hists["latency"][by]):
            met, missed = t.by("sla.met", by)[value], t.by("sla.missed", by)[value]
            rows[value].update(
                latency_s=_percentiles(t.hist("latency", by, value)),
                sla_adherence=_rate(met, met + missed),
                escalations=t.by("escalations", by)[value],
                expiries=t.by("expiries", by)[value],
            )
    return dict(sorted(rows.items()))
