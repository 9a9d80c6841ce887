"""The supervisor's dashboard: the process figures of the last 30 days with data, as charts.

Only reviewers holding the ``supervisor`` role see it. The figures come from the audit trail
(:mod:`carebound.kpi`), folded on the way in; the charts are SVG drawn here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from carebound.kpi import REFERRAL_AGENTS, build_report, human_seconds
from carebound.state.kpi import KpiStore
from carebound.web._charts import bars, columns
from carebound.web._context import context
from carebound.web._page import SignedIn, render
from carebound.web._problems import Problem

SUPERVISOR = "supervisor"
DAYS = 30
FOLD_PER_VIEW = 5_000


def dashboard(request: Request, who: SignedIn) -> HTMLResponse:
    """Process figures as charts, for supervisors."""
    if SUPERVISOR not in who.roles:
        raise Problem(
            status=403,
            detail="the dashboard is for reviewers with the supervisor role",
            code="wrong_role",
        )
    runner = context(request).runner
    store = KpiStore(runner.client, prefix=runner.prefix, referral_agents=REFERRAL_AGENTS)
    store.catch_up(limit=FOLD_PER_VIEW)
    days = store.days()[-DAYS:]
    span = store.span(date.fromisoformat(days[0]) if days else None)
    report = build_report(span, by="rule", today=runner.clock.now().date())
    values = {"r": report, "charts": _charts(report), "pct": _pct, "dur": human_seconds}
    return render(request, "dashboard.html", values, who=who)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{round(value * 100)}%"


def _charts(r: dict[str, Any]) -> dict[str, Any]:
    by_rule = r["by"]["rule"]
    return {
        "daily": columns(r["daily"]["runs.started"], r["days"], title="Runs started per day"),
        "funnel": bars(list(r["funnel"].items()), title="Referral funnel"),
        "holds": bars(
            [(rule, row.get("holds", 0)) for rule, row in by_rule.items()],
            title="Holds by rule",
        ),
        "overrides": bars(
            [
                (rule, round(100 * row["override_rate"]))
                for rule, row in by_rule.items()
                if row.get("override_rate") is not None
            ],
            title="Override rate by rule",
            unit=" %",
        ),
        "latency": bars(
            [
                (rule, row["latency_s"]["p90"])
                for rule, row in by_rule.items()
                if row.get("latency_s", {}).get("p90") is not None
            ],
            title="Approval latency p90 by rule",
            unit=" s",
        ),
        "aging": bars(list(r["referral_aging"].items()), title="Open referrals by age"),
    }
