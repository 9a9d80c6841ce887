"""``carebound report``: process figures from the audit trail (see :mod:`carebound.kpi`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from carebound._errors import echo_id
from carebound.cli._session import key_prefix, open_client, print_json, stdout

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    """One bar per value, scaled to the largest (empty for no values)."""
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, v * (len(_BARS) - 1) // top)] for v in values)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; give it as YYYY-MM-DD, e.g. 2026-03-02",
            param_hint=option,
        ) from None


def report(
    *,
    since: Annotated[
        str | None, typer.Option("--since", help="First day (YYYY-MM-DD); default: the first.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day (YYYY-MM-DD); default: the last.")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Break the figures down by agent, rule, role or reviewer."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Process figures from the audit trail: runs, cycle time, waits, exception and
    touchless rates, approval latency and SLA, overrides, document chase, referral funnel."""
    from carebound.kpi import REFERRAL_AGENTS, build_report
    from carebound.state.kpi import KpiStore

    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and first > last:
        raise typer.BadParameter(f"--since {since} is after --until {until}", param_hint="--since")
    if by is not None and by not in ("agent", "rule", "role", "reviewer"):
        raise typer.BadParameter(
            f"{echo_id(by)} is not a breakdown; use agent, rule, role or reviewer",
            param_hint="--by",
        )
    store = KpiStore(open_client(), prefix=key_prefix(), referral_agents=REFERRAL_AGENTS)
    store.catch_up()
    span = store.span(first, last)
    data = build_report(span, by=by, today=datetime.now(UTC).date())  # type: ignore[arg-type]
    if as_json:
        print_json(data)
        return
    _render(data, by)


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _p(figure: dict[str, Any]) -> str:
    from carebound.kpi import human_seconds

    return f"{human_seconds(figure.get('p50'))} / {human_seconds(figure.get('p90'))}"


_LABELS_WIDTH = 62
"""Columns the figure and value columns of the report need beside the daily bars."""


def _render(data: dict[str, Any], by: str | None) -> None:
    from rich.table import Table

    from carebound.kpi import human_seconds

    console = stdout()
    days = data["days"]
    span = f"{days[0]} to {days[-1]}" if days else "no figures yet (run something first)"
    console.print(f"[bold]Process figures[/bold], {span}")
    runs, appr, chase = data["runs"], data["approvals"], data["chase"]
    rows = [
        ("runs started", runs["started"], data["daily"]["runs.started"]),
        ("runs completed / failed", f"{runs['completed']} / {runs['failed']}", None),
        ("exception / touchless",
         f"{_pct(runs['exception_rate'])} / {_pct(runs['touchless_rate'])}", None),
        ("cycle time p50 / p90", _p(data["cycle_time_s"]), None),
        ("waiting on people / systems", f"{human_seconds(data['waiting_s']['people'])} / "
         f"{human_seconds(data['waiting_s']['systems'])}", None),
        ("holds", appr["holds"], data["daily"]["holds"]),
        ("decisions", appr["decisions"], data["daily"]["decisions"]),
        ("approval latency p50 / p90", _p(appr["latency_s"]), None),
        ("SLA adherence", _pct(appr["sla"]["adherence"]), None),
        ("override rate", _pct(appr["override_rate"]), data["daily"]["overrides"]),
        ("escalations / expiries", f"{appr['escalations']} / {appr['expiries']}", None),
        ("document requests / attempts / replies",
         f"{chase['requests']} / {chase['attempts']} / {chase['replies']}", None),
        ("referral funnel", " > ".join(f"{k} {v}" for k, v in data["funnel"].items()), None),
        ("open referrals by age", ", ".join(f"{k} {v}" for k, v in
                                            data["referral_aging"].items()), None),
    ]  # fmt: skip
    # The bars get what the labels and values leave (one bar per day): over a long span only
    # the latest days, or the unwrapped bars would squeeze the labels and values out entirely.
    shown = max(7, console.width - _LABELS_WIDTH)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("figure", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("by day" if len(days) <= shown else f"last {shown} days", no_wrap=True)
    for label, value, daily in rows:
        table.add_row(label, str(value), sparkline(daily[-shown:]) if daily else "")
    console.print(table)
    if by is not None:
        _render_breakdown(data["by"][by], by)


_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "agent": (("started", "started"), ("ended", "ended"), ("exception", "exception_rate"),
              ("cycle p50/p90", "cycle_time_s")),
    "rule": (("holds", "holds"), ("decided", "decisions"), ("overridden", "override_rate"),
             ("latency p50/p90", "latency_s"), ("SLA", "sla_adherence"),
             ("esc/exp", "escalations")),
    "reviewer": (("decided", "decisions"), ("overrides", "overrides"),
                 ("overridden", "override_rate")),
}  # fmt: skip
_COLUMNS["role"] = _COLUMNS["rule"]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "escalations":
        return f"{_fmt(value)}/{_fmt(row.get('expiries'))}"
    if isinstance(value, dict):
        return _p(value)
    if key.endswith(("rate", "adherence")):
        return _pct(value)
    return _fmt(value)


def _render_breakdown(rows: dict[str, dict[str, Any]], by: str) -> None:
    from rich.table import Table

    table = Table(title=f"by {by}", box=None, header_style="bold", pad_edge=False)
    table.add_column(by, overflow="fold")
    for header, _ in _COLUMNS[by]:
        table.add_column(header, overflow="fold")
    for name, row in rows.items():
        table.add_row(name, *(_cell(row, key) for _, key in _COLUMNS[by]))
    stdout().print(table)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the app."""
    app.command("report")(report)
