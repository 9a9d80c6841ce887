"""Rich renderers for audit trails: a run's events and whether its chain holds.

Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

from carebound._format import detail_line
from carebound.audit import AuditEvent, VerifyResult
from carebound.cli._render_style import _table


def audit_table(events: Sequence[AuditEvent], *, wide: bool = False) -> RenderableType:
    """A run's audit trail, oldest first (times in UTC): one block per event (fits 80
    columns and pipes), or with ``wide`` one table row per event."""
    if not events:
        return Text("no audit events", style="dim")
    if not wide:
        return Group(*(_block(e) for e in events))
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
        actor = _actor(e)
        table.add_row(
            str(e.seq),
            f"{e.time:%Y-%m-%d %H:%M:%S}",
            Text(actor),
            Text(e.action),
            Text(e.category),
            _outcome(e.outcome),
            Text(detail_line(e.detail), style="dim"),
        )
    return table


def _actor(e: AuditEvent) -> str:
    return f"{e.actor.kind}:{e.actor.id}" + (f" ({e.actor.role})" if e.actor.role else "")


def _block(e: AuditEvent) -> RenderableType:
    """One event: its number, full time and what happened, then who, then its detail."""
    head = Text.assemble(
        (f"#{e.seq}", "bold"), f"  {e.time:%Y-%m-%d %H:%M:%S} UTC  ", (e.action, "bold"), "  "
    )
    head.append_text(_outcome(e.outcome))
    who = Text(f"  {_actor(e)} · {e.category}")
    lines: list[RenderableType] = [head, who]
    if e.detail:
        lines.append(Padding(Text(detail_line(e.detail, 4000, 400), style="dim"), (0, 0, 0, 2)))
    return Group(*lines)


def _outcome(value: str) -> Text:
    style = {"success": "green", "denied": "red", "failed": "red", "refused": "red"}
    return Text(value, style=style.get(value, "yellow"))


def verify_line(run_id: str, result: VerifyResult) -> RenderableType:
    """Whether a run's audit chain holds, said plainly."""
    if result.ok:
        held = Text(
            f"✓ audit chain of {run_id} holds: {result.count} events, every hash links",
            style="green",
        )
        notes = [Text(f"  note: {n}", style="yellow") for n in result.notes]
        return Group(held, *notes) if notes else held
    lines = [
        Text(
            f"✗ audit chain of {run_id} is BROKEN ({result.count} events): "
            "the trail was altered, reordered or cut",
            style="bold red",
        )
    ]
    lines.extend(Text(f"  - {p}", style="red") for p in result.problems)
    return Group(*lines)
