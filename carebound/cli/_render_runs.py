"""Rich renderers for runs: one run's report, the runs list, a run's status, a folder of scenarios.

They take carebound's models and return rich renderables; they know nothing of Typer or of
the store. Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed
as markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
from rich.console import Group, RenderableType
from rich.text import Text

from carebound._format import ago, due, inline
from carebound._report import RunReport
from carebound.cli._render_style import _blocks, _due, _pairs, _risk, _section, _status, _table
from carebound.state.runs import RunRecord

if TYPE_CHECKING:  # the engine (and LangGraph) stay unloaded for read-only commands
    from carebound.engine.results import RunView


def report_view(report: RunReport) -> RenderableType:
    """What one run did, as ``carebound run`` prints it."""
    parts: list[RenderableType] = [
        _pairs(
            [
                ("run", report.run_id or "-"),
                ("status", _status(report.status)),
                ("summary", report.summary or "-"),
            ]
        )
    ]
    if report.pending:
        rows = [
            (
                [Text(p.approval_id), Text(p.tool), _risk(p.risk), Text(p.required_role)],
                Text(p.reason, style="dim"),
            )
            for p in report.pending
        ]
        parts.append(_blocks(("approval", "tool", "risk", "role"), rows, title="Waiting for"))
    parts.extend(_findings(report))
    if report.effects:
        effects = [([Text(e.tool), _status(e.status)], Text(e.key)) for e in report.effects]
        parts.append(_blocks(("tool", "status"), effects, title="Effects (idempotency key below)"))
    if report.pending:
        first = report.pending[0].approval_id
        parts.append(Text(f"\nnext: carebound show {first}", style="dim"))
    return Group(*parts)


def _findings(report: RunReport) -> list[RenderableType]:
    parts: list[RenderableType] = []
    found = report.findings
    if found.missing_documents:
        table = _table("code", "document", title="Missing documents")
        for m in found.missing_documents:
            table.add_row(Text(m.code), Text(m.display))
        parts.append(table)
    if found.mismatches:
        table = _table("field", "values", "risk", "action", title="Mismatches")
        for mm in found.mismatches:
            values = ", ".join(f"{k}: {inline(v, 30)}" for k, v in mm.values.items())
            table.add_row(Text(mm.field), Text(values), _risk(mm.risk), Text(mm.action))
        parts.append(table)
    return parts


def runs_table(records: Sequence[RunRecord], now: datetime) -> RenderableType:
    """Runs, newest first."""
    if not records:
        return Text("no runs", style="dim")
    rows = [
        (
            [
                Text(r.run_id),
                Text(r.agent),
                _status(r.status),
                Text(r.requester),
                Text(f"{r.updated_at:%Y-%m-%d %H:%M} UTC"),
                Text(ago(r.updated_at, now)),
            ],
            Text(inline(_why(r), 200), style="dim"),
        )
        for r in records
    ]
    return _blocks(("run", "agent", "status", "requester", "updated", ""), rows)


def _why(record: RunRecord) -> str:
    """A run's line under its row: what a waiting run waits for (e.g. a system that is down),
    else its summary."""
    if record.status == "waiting" and record.wait_reason:
        return record.wait_reason
    return record.summary or record.wait_reason or ""


def run_status(view: RunView, report: RunReport, now: datetime) -> RenderableType:
    """Where a run is: status, summary, steps, the hold or wait it is parked on, effects."""
    record = view.record
    rows: list[tuple[str, RenderableType | str]] = [
        ("run", record.run_id),
        ("agent", record.agent),
        ("status", _status(record.status)),
        ("summary", record.summary or "-"),
        ("steps", str(view.steps)),
        ("requester", record.requester),
        ("policy", record.policy),
        ("connectors", record.connectors or "-"),
        ("started", f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC ({ago(record.created_at, now)})"),
        ("updated", ago(record.updated_at, now)),
    ]
    if record.status == "waiting":
        until = f" (until {due(record.wait_until, now)})" if record.wait_until else ""
        rows.append(("waiting", f"{record.wait_reason or 'for an event'}{until}"))
    parts: list[RenderableType] = [_pairs(rows)]
    pending = view.pending
    if pending is not None and pending.status == "pending":
        request = pending.request
        paused = [Text(request.approval_id), Text(request.tool), _risk(request.risk)]
        paused += [Text(pending.required_role), _due(pending.deadline, now)]
        held = [(paused, Text(request.packet.summary, style="dim"))]
        parts.append(_blocks(("approval", "tool", "risk", "role", "due"), held, title="Paused on"))
    if view.effects:
        effects = [
            ([Text(e.tool), _status(e.status), Text(str(e.attempts))], Text(e.key))
            for e in view.effects
        ]
        headers = ("tool", "status", "attempts")
        parts.append(_blocks(headers, effects, title="Effects (idempotency key below)"))
    parts.extend(_findings(report))
    known = {"missing_documents", "mismatches"}
    other = {k: v for k, v in view.findings.items() if k not in known}
    if other:
        parts.append(_section("Other findings"))
        parts.append(Text(json.dumps(other, indent=2, ensure_ascii=False, default=str)))
    return Group(*parts)


class ScenarioRow(BaseModel):
    """One scenario of a folder run: what it gave, or why it could not run."""

    model_config = ConfigDict(frozen=True)

    scenario: str
    name: str = ""
    status: str = "error"
    """The run's status, or ``error`` when the scenario could not run."""
    passed: bool | None = None
    failures: list[str] = []
    elapsed_ms: float = 0.0
    error: str | None = None
    hint: str | None = None
    report: RunReport | None = None

    @property
    def result(self) -> str:
        """``passed``, ``failed``, ``error`` or the run's status when nothing is expected."""
        if self.error is not None:
            return "error"
        if self.passed is None:
            return f"{self.status} (no expect)"
        return "passed" if self.passed else "failed"


def scenarios_table(rows: Sequence[ScenarioRow]) -> RenderableType:
    """The summary of a folder of scenarios."""
    table = _table("scenario", "status", "result", "time")
    style = {"passed": "green", "failed": "bold red", "error": "bold red"}
    for row in rows:
        table.add_row(
            Text(Path(row.scenario).name),
            _status(row.status),
            Text(row.result, style=style.get(row.result, "yellow")),
            f"{row.elapsed_ms / 1000:.2f} s",
        )
    counts = {k: sum(1 for r in rows if r.result == k) for k in ("passed", "failed", "error")}
    other = len(rows) - sum(counts.values())
    plural = "" if len(rows) == 1 else "s"
    summary = Text(
        f"{len(rows)} scenario{plural}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} could not run, {other} without expectations",
        style="bold",
    )
    problems: list[RenderableType] = []
    for row in rows:
        for failure in row.failures:
            problems.append(Text(f"  {Path(row.scenario).name}: {failure}", style="red"))
        if row.error:
            problems.append(Text(f"  {Path(row.scenario).name}: {row.error}", style="red"))
    return Group(table, *problems, summary)
