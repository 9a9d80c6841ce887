"""The shared look of the CLI's renderers: status and risk colours, key/value grids, plain tables.

Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
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
    printed whole on one line, ready to copy, and no cell is cut with an ellipsis. A row too
    wide for the terminal goes on, indented, on the next line, never breaking inside a cell
    (a wrapped '278d 8h ago' left '8h ago' alone at the left edge, like a row of its own)."""
    return _Blocks(headers, rows, title)


class _Blocks:
    """:func:`_blocks`, laid out for the width it is rendered at."""

    def __init__(
        self,
        headers: Sequence[str],
        rows: Sequence[tuple[Sequence[Cell], Cell | None]],
        title: str | None,
    ) -> None:
        self.headers, self.rows, self.title = headers, rows, title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cells = [[Text(c) if isinstance(c, str) else c for c in fields] for fields, _ in self.rows]
        widths = [
            max([len(header), *(len(row[i].plain) for row in cells)])
            for i, header in enumerate(self.headers)
        ]
        lines: list[RenderableType] = []
        if self.title:
            lines.append(Text(self.title, style="italic"))
        header_cells = [Text(h, style="bold") for h in self.headers]
        lines += _row_lines(header_cells, widths, options.max_width)
        for row, (_, detail) in zip(cells, self.rows, strict=True):
            lines += _row_lines(row, widths, options.max_width)
            if detail:
                lines.append(
                    Padding(Text(detail) if isinstance(detail, str) else detail, (0, 0, 0, 2))
                )
        yield Group(*lines)


def _row_lines(row: Sequence[Text], widths: Sequence[int], max_width: int) -> list[Text]:
    """One row's cells in their columns; the cells past ``max_width`` go on indented lines,
    two spaces apart."""
    lines: list[Text] = []
    line = Text()
    for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
        if not cell.plain and i == len(row) - 1:
            break  # an empty last column (a heading-less one) adds nothing
        gap = "  " if lines and line.plain.strip() else ""
        if line.plain.strip() and len(line.plain) + len(gap) + len(cell.plain) > max_width:
            line.rstrip()
            lines.append(line)
            line, gap = Text("  "), ""
        line.append(gap)
        line.append_text(cell)
        if not lines and i < len(row) - 1:  # the first line keeps to the columns
            line.append(" " * (width - len(cell.plain) + 2))
    line.rstrip()
    lines.append(line)
    return lines


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")
