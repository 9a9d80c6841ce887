"""Small SVG charts drawn on the server: no chart library, no script, nothing from a CDN.

Every text in a chart is escaped; the charts take only numbers and short labels (days, rule and
role names, funnel stages), never PHI.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

_BAR = "#2f6f9f"
_MUTED = "#9aa8b5"


def bars(
    rows: Sequence[tuple[str, float]], *, title: str, unit: str = "", width: int = 420
) -> Markup:
    """A horizontal bar chart, one bar per (label, value)."""
    row_h, label_w, top = 22, 140, 26
    height = top + row_h * max(len(rows), 1) + 6
    peak = max((v for _, v in rows), default=0) or 1
    parts = [_open(width, height, title), _title(title)]
    if not rows:
        parts.append(f'<text x="8" y="{top + 14}" fill="{_MUTED}">no figures yet</text>')
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = (width - label_w - 70) * (value / peak)
        parts.append(
            f'<text x="8" y="{y + 15}" font-size="12">{escape(label[:22])}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="14" fill="{_BAR}">'
            f"<title>{escape(label)}: {_num(value)}{escape(unit)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{_num(value)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(
    values: Sequence[int], labels: Sequence[str], *, title: str, width: int = 420
) -> Markup:
    """A column chart of a daily series (the first and last day labelled)."""
    height, top, bottom = 150, 26, 20
    n = max(len(values), 1)
    peak = max(values, default=0) or 1
    step = (width - 16) / n
    parts = [_open(width, height, title), _title(title)]
    for i, value in enumerate(values):
        h = (height - top - bottom) * (value / peak)
        x = 8 + i * step
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{_BAR}"><title>{escape(labels[i])}: {value}</title></rect>'
        )
    if labels:
        parts.append(
            f'<text x="8" y="{height - 4}" font-size="11" fill="{_MUTED}">'
            f"{escape(labels[0])}</text>"
            f'<text x="{width - 8}" y="{height - 4}" font-size="11" fill="{_MUTED}" '
            f'text-anchor="end">{escape(labels[-1])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="system-ui, sans-serif">'
    )


def _title(title: str) -> str:
    return f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>'


def _num(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"
