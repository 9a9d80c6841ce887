"""The shared look of the CLI's renderers: status and risk colours, key/value grids, plain tables.

Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from carebound._format import due

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
    "withdrawn": "dim",
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


Cell = Text | str


def _blocks(
    headers: Sequence[str],
    rows: Sequence[tuple[Sequence[Cell], Cell | None]],
    *,
    title: str | None = None,
) -> RenderableType:
    """Rows of short fields (ids first) under a header line, each with its long text (a
    summary, a key) on the next line, indented: at any width, 80 columns or a pipe, an id is
    printed whole on one line, ready to copy, and no cell is cut with an ellipsis."""
    cells = [[Text(c) if isinstance(c, str) else c for c in fields] for fields, _ in rows]
    widths = [
        max([len(header), *(len(row[i].plain) for row in cells)])
        for i, header in enumerate(headers)
    ]
    lines: list[RenderableType] = []
    if title:
        lines.append(Text(title, style="italic"))
    header = Text("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    header.stylize("bold")
    lines.append(header)
    for row, (_, detail) in zip(cells, rows, strict=True):
        line = Text()
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            line.append_text(cell)
            if i < len(row) - 1:
                line.append(" " * (width - len(cell.plain) + 2))
        lines.append(line)
        if detail:
            lines.append(Padding(Text(detail) if isinstance(detail, str) else detail, (0, 0, 0, 2)))
    return Group(*lines)


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")
