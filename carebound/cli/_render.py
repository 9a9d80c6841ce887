"""Rich renderers for runs, holds, decision packets, audit trails and the embedded server.

They take carebound's models and return rich renderables; they know nothing of Typer or of
the store, so a web inbox can reuse them (e.g. ``Console(record=True)`` and ``export_html``).
Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from carebound._report import RunReport
from carebound._runs import RunRecord
from carebound.approvals import ApprovalView, SourceRef
from carebound.audit import AuditEvent, VerifyResult
from carebound.cli._format import MASK, ago, detail_line, due, inline, short_hash, size
from carebound.engine.results import RunView, SweepReport
from carebound.guardrails import PolicyPack
from carebound.store import EmbeddedStatus

STATUS_STYLE = {
    "running": "cyan",
    "paused": "yellow",
    "waiting": "blue",
    "completed": "green",
    "failed": "red",
    "budget_exhausted": "red",
    "cancelled": "dim",
    "quarantined": "bold magenta",
    "pending": "yellow",
    "approved": "green",
    "edited": "green",
    "rejected": "red",
    "expired": "red",
}
RISK_STYLE = {"low": "green", "medium": "yellow", "high": "bold red"}


def _status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def _risk(value: str) -> Text:
    return Text(value, style=RISK_STYLE.get(value, ""))


def _due(deadline: datetime, now: datetime) -> Text:
    text = due(deadline, now)
    return Text(text, style="bold red" if text.startswith("overdue") else "")


def _pairs(rows: Iterable[tuple[str, RenderableType | str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, Text(value) if isinstance(value, str) else value)
    return grid


def _table(*columns: str, title: str | None = None) -> Table:
    """A plain table: a rule under the header, no frame."""
    table = Table(*columns, title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    return table


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


# -- runs ---------------------------------------------------------------------------------


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
        table = _table("approval", "tool", "risk", "role", "reason", title="Waiting for")
        for p in report.pending:
            table.add_row(
                Text(p.approval_id),
                Text(p.tool),
                _risk(p.risk),
                Text(p.required_role),
                Text(p.reason),
            )
        parts.append(table)
    parts.extend(_findings(report))
    if report.effects:
        table = _table("tool", "status", "idempotency key", title="Effects")
        for e in report.effects:
            table.add_row(Text(e.tool), _status(e.status), Text(e.key))
        parts.append(table)
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
    table = _table("run", "agent", "status", "requester", "updated", "summary")
    for r in records:
        table.add_row(
            Text(r.run_id),
            Text(r.agent),
            _status(r.status),
            Text(r.requester),
            Text(ago(r.updated_at, now)),
            Text(inline(r.summary or r.wait_reason or "", 50)),
        )
    return table


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
        table = _table("approval", "tool", "risk", "role", "due", "summary", title="Paused on")
        table.add_row(
            Text(request.approval_id),
            Text(request.tool),
            _risk(request.risk),
            Text(pending.required_role),
            _due(pending.deadline, now),
            Text(request.packet.summary),
        )
        parts.append(table)
    if view.effects:
        table = _table("tool", "status", "attempts", "idempotency key", title="Effects")
        for e in view.effects:
            table.add_row(Text(e.tool), _status(e.status), str(e.attempts), Text(e.key))
        parts.append(table)
    parts.extend(_findings(report))
    known = {"missing_documents", "mismatches"}
    other = {k: v for k, v in view.findings.items() if k not in known}
    if other:
        parts.append(_section("Other findings"))
        parts.append(Text(json.dumps(other, indent=2, ensure_ascii=False, default=str)))
    return Group(*parts)


# -- the inbox and the decision packet ------------------------------------------------------


def inbox_table(views: Sequence[ApprovalView], now: datetime) -> RenderableType:
    """Paused steps, most urgent first."""
    if not views:
        return Text("inbox empty: no paused steps", style="dim")
    table = _table("approval", "due", "risk", "role", "agent", "summary")
    for v in views:
        table.add_row(
            Text(v.request.approval_id),
            _due(v.deadline, now),
            _risk(v.request.risk),
            Text(v.required_role),
            Text(v.request.agent),
            Text(v.request.packet.summary),
        )
    return table


def _source(ref: SourceRef) -> str:
    return " · ".join(p for p in (ref.resource, ref.field, ref.document) if p)


def packet_view(view: ApprovalView, now: datetime, *, masked: bool) -> RenderableType:
    """The decision packet of a hold, for a person deciding it.

    ``masked`` says the view's PHI was replaced by :data:`~carebound.cli._format.MASK`
    (see :func:`~carebound.cli._format.mask_approval`); the footer then says how to reveal it.
    """
    request = view.request
    parts: list[RenderableType] = [
        _packet_header(view, now),
        *_packet_call(view),
        *_packet_body(view),
    ]
    footer: list[str] = []
    if masked:
        footer.append(
            f"PHI is masked ({MASK}). To see it: carebound show {request.approval_id} --reveal "
            "--reviewer YOU (recorded in the audit trail)"
        )
    if view.status == "pending":
        footer.append(
            f"decide: carebound approve|reject|edit|escalate {request.approval_id} "
            f"--reviewer YOU --role {view.required_role}"
        )
    if footer:
        parts.append(Text("\n" + "\n".join(footer), style="dim"))
    return Panel(
        Group(*parts),
        title=Text(f"approval {request.approval_id}", style="bold"),
        title_align="left",
        box=box.ROUNDED,
    )


def _packet_header(view: ApprovalView, now: datetime) -> RenderableType:
    request = view.request
    pinned = request.pinned
    timeout = "reject"
    if request.on_timeout == "escalate" and request.escalate_to:
        timeout = f"escalate to {request.escalate_to}"
    held = f"{request.rule_id}: {request.rule_text}" if request.rule_id else request.rule_text
    deadline = Text.assemble(_due(view.deadline, now), f"  ({view.deadline:%Y-%m-%d %H:%M} UTC)")
    rows: list[tuple[str, RenderableType | str]] = [
        ("decide", Text(request.packet.summary, style="bold")),
        ("status", _status(view.status)),
        ("held by", held),
        ("reason", request.reason),
        ("risk", _risk(request.risk)),
        ("role", view.required_role + ("  (two reviewers)" if request.two_person else "")),
        ("due", deadline),
        ("on timeout", timeout),
        (
            "run",
            f"{request.run_id} · agent {pinned.agent} v{pinned.agent_version} · "
            f"requested by {request.requester}",
        ),
        ("patient", request.patient_ref or "-"),
        ("policy", f"{pinned.policy}@{pinned.policy_version} ({pinned.policy_fingerprint})"),
    ]
    if view.approvers:
        rows.append(("approved by", ", ".join(view.approvers)))
    if view.record is not None and view.status != "pending":
        rec = view.record
        when = f"{rec.decided_at:%Y-%m-%d %H:%M:%S} UTC"
        rows.append(("decided", f"{rec.status} by {rec.decided_by} at {when}"))
    return _pairs(rows)


def _packet_call(view: ApprovalView) -> list[RenderableType]:
    request = view.request
    proposed = request.original_args  # set once a reviewer's edit of a two-person hold replaced it
    kind = "Proposed" if proposed is None else "Edited"
    title = f"{kind} call: {request.tool}  (args {short_hash(request.args_hash)})"
    if proposed is not None and view.status == "pending":
        title += "  (edited by a reviewer, awaiting a second approval)"
    if not request.args:
        return [_section(title), Text("  (no arguments)", style="dim")]
    args = _table("argument", "value", *(() if proposed is None else ("agent proposed",)))
    for key, value in request.args.items():
        cells = [Text(key), _arg_text(value)]
        if proposed is not None:
            before = proposed.get(key)
            cells.append(_arg_text(before) if before != value else Text("(same)", style="dim"))
        args.add_row(*cells)
    parts: list[RenderableType] = [_section(title), args]
    changes = view.record.changes if view.record is not None else []
    if changes:
        parts.append(_section("Changed by the decision (before -> after)"))
        for change in changes:
            before, after = _arg_text(change.before).plain, _arg_text(change.after).plain
            parts.append(Text(f"  {change.field}: {before} -> {after}"))
    return parts


def _arg_text(value: Any) -> Text:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return Text(shown, style="dim" if shown == MASK else "")


def _packet_body(view: ApprovalView) -> list[RenderableType]:
    packet = view.request.packet
    parts: list[RenderableType] = [_section("Facts")]
    if packet.facts:
        facts = _table("fact", "value", "source")
        for f in packet.facts:
            facts.add_row(
                Text(f.label),
                Text(f.value, style="dim" if f.value == MASK else ""),
                Text(_source(f.source), style="dim"),
            )
        parts.append(facts)
    else:
        parts.append(Text("  (none given)", style="dim"))

    parts.append(_section("Checks"))
    for c in packet.checks:
        mark = {True: Text("  ✓ ", style="green"), None: Text("  ? ", style="yellow")}.get(
            c.passed, Text("  ✗ ", style="red")
        )
        line = Text.assemble(mark, (c.name, "bold"), f": {c.detail}")
        if c.rule_id or c.rule_text:
            line.append(f"\n      rule {c.rule_id or '-'}: {c.rule_text or ''}", style="dim")
        parts.append(line)

    parts.append(_section("Missing"))
    parts.extend(Text(f"  • {item}") for item in packet.missing)
    if not packet.missing:
        parts.append(Text("  nothing", style="dim"))

    parts.append(_section("Recommendation"))
    recommendation = Text.assemble(
        (packet.recommendation, "bold"), f" (confidence {packet.confidence:.0%})"
    )
    if packet.recommendation_text:
        recommendation.append(f": {packet.recommendation_text}")
    parts.append(recommendation)
    parts.append(Text(""))
    parts.append(
        _pairs(
            [
                ("if you approve", packet.on_approve or "-"),
                ("if you reject", packet.on_reject or "-"),
            ]
        )
    )
    return parts


def decision_result(
    approval_id: str, kind: str, outcome: str, run: RunView, now: datetime
) -> RenderableType:
    """What a decision did, and where the run is now."""
    done = {"approve": "approved", "reject": "rejected", "edit": "edited and approved"}
    said = {
        "decided": f"{approval_id} {done.get(kind, kind)}",
        "awaiting_second_approver": f"{approval_id}: first approval recorded; a second, "
        "different reviewer must approve too",
        "escalated": f"{approval_id} escalated",
    }.get(outcome, f"{approval_id}: {outcome}")
    record = run.record
    state = Text.assemble(f"run {record.run_id} is now ", _status(record.status))
    if record.status == "waiting":
        until = f" (until {due(record.wait_until, now)})" if record.wait_until else ""
        state.append(f": {record.wait_reason or 'for an event'}{until}")
    elif record.summary:
        state.append(f": {record.summary}")
    parts: list[RenderableType] = [Text.assemble(("✓ ", "green"), said), state]
    pending = run.pending
    if pending is not None and pending.status == "pending":
        parts.append(
            Text(
                f"paused on {pending.request.approval_id} ({pending.request.tool}, role "
                f"{pending.required_role}, due {due(pending.deadline, now)})",
                style="yellow",
            )
        )
    return Group(*parts)


def reviewers_table(pack: PolicyPack) -> RenderableType:
    """The reviewer directory of a policy pack."""
    title = f"Reviewers of policy pack {pack.name}@{pack.version}"
    if not pack.reviewers:
        return Text(f"{title}: none", style="dim")
    table = _table("id", "name", "roles", title=title)
    for r in pack.reviewers:
        table.add_row(Text(r.id), Text(r.name), Text(", ".join(r.roles)))
    return table


# -- audit --------------------------------------------------------------------------------


def audit_table(events: Sequence[AuditEvent]) -> RenderableType:
    """A run's audit trail, oldest first (times in UTC)."""
    if not events:
        return Text("no audit events", style="dim")
    table = _table()
    table.collapse_padding = True
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("actor")
    table.add_column("action", no_wrap=True)
    table.add_column("category", overflow="fold")
    table.add_column("outcome", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for e in events:
        actor = f"{e.actor.kind}:{e.actor.id}" + (f" ({e.actor.role})" if e.actor.role else "")
        table.add_row(
            str(e.seq),
            f"{e.time:%m-%d %H:%M:%S}",
            Text(actor),
            Text(e.action),
            Text(e.category),
            _outcome(e.outcome),
            Text(detail_line(e.detail), style="dim"),
        )
    return table


def _outcome(value: str) -> Text:
    style = {"success": "green", "denied": "red", "failed": "red", "refused": "red"}
    return Text(value, style=style.get(value, "yellow"))


def verify_line(run_id: str, result: VerifyResult) -> RenderableType:
    """Whether a run's audit chain holds, said plainly."""
    if result.ok:
        return Text(
            f"✓ audit chain of {run_id} holds: {result.count} events, every hash links",
            style="green",
        )
    lines = [
        Text(
            f"✗ audit chain of {run_id} is BROKEN ({result.count} events): "
            "the trail was altered, reordered or cut",
            style="bold red",
        )
    ]
    lines.extend(Text(f"  - {p}", style="red") for p in result.problems)
    return Group(*lines)


# -- scenarios, worker, server -----------------------------------------------------------------


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


def sweep_view(report: SweepReport, recovered: Sequence[str] = ()) -> RenderableType:
    """What one worker sweep did."""
    rows: list[tuple[str, RenderableType | str]] = [
        ("timers fired", str(report.timers_fired)),
        ("holds expired", str(report.holds_expired)),
        ("holds escalated", str(report.holds_escalated)),
        ("runs recovered", str(report.runs_recovered + len(recovered))),
        ("runs failed", str(report.runs_failed)),
        ("runs quarantined", str(report.runs_quarantined)),
    ]
    return _pairs(rows)


def server_view(status: EmbeddedStatus | None, home: Path, external: str | None) -> RenderableType:
    """The embedded server of a data directory (and whether an external store is in use)."""
    parts: list[RenderableType] = []
    if external is not None:
        parts.append(
            Text(
                f"CAREBOUND_REDIS_URL is set: commands use {external}; the embedded server "
                "below is not used.",
                style="yellow",
            )
        )
    if status is None:
        parts.append(Text(f"no embedded server has been started in {home}", style="dim"))
        return Group(*parts)
    where = str(status.socket) if status.socket is not None else f"127.0.0.1:{status.port}"
    rows: list[tuple[str, RenderableType | str]] = [
        ("state", Text("running", "green") if status.running else Text("stopped", "dim")),
        ("server", status.version or Path(status.binary).name),
        ("pid", str(status.pid) if status.pid is not None else "-"),
        ("listening", where),
        ("data dir", str(status.data_dir)),
        ("size", size(status.data_bytes)),
        ("binary", status.binary),
    ]
    parts.append(_pairs(rows))
    return Group(*parts)
