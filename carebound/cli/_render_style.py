"""The shared look of the CLI's renderers: status and risk colours, key/value grids, plain tables.

Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.console import RenderableType
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
