"""Rich renderers for the worker and the embedded server: a sweep's result, the server's status.

Values from runs and documents are wrapped in :class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

from carebound._format import size
from carebound.cli._render_style import _pairs
from carebound.store import EmbeddedStatus

if TYPE_CHECKING:  # the engine (and LangGraph) stay unloaded for read-only commands
    from carebound.engine.results import SweepReport


def sweep_view(report: SweepReport, recovered: Sequence[str] = ()) -> RenderableType:
    """What one worker sweep did."""
    rows: list[tuple[str, RenderableType | str]] = [
        ("timers fired", str(report.timers_fired)),
        ("holds expired", str(report.holds_expired)),
        ("holds escalated", str(report.holds_escalated)),
        ("runs recovered", str(report.runs_recovered + len(recovered))),
        ("runs resumed (system back)", str(report.runs_resumed)),
        ("outreach replies delivered", str(report.replies_delivered)),
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
