"""The one place untrusted text is made safe for a terminal.

Values printed by the CLI come from FHIR fields, faxes, policy packs and other systems. Any of
them may carry terminal control: a CSI sequence that clears the screen or moves the cursor, an
OSC sequence that sets the window title or an OSC-8 hyperlink that dresses a phishing link as a
patient name, a C0/C1 control, or a bidi override that makes text read backwards.
:func:`terminal_safe` removes all of these; :class:`SafeConsole` applies it to every piece of
text a rich console prints (before layout, so columns stay aligned), while keeping the styling
and cursor control rich itself emits. Every console the CLI prints with is a SafeConsole
(``carebound.cli._session``), and plain ``error:``/JSON output goes through the same function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

_SEQUENCES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [\ -/]* [@-~]                  # CSI ... final byte
    | (?:\x1b\]|\x9d) .*? (?:\x07|\x1b\\|\x9c|\Z)            # OSC (titles, OSC-8 links) ... ST
    | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f]) .*? (?:\x1b\\|\x9c|\Z)  # DCS, SOS, PM, APC ... ST
    | \x1b [\ -/]* [0-~]                                     # other escapes (RIS, charsets)
    """,
    re.VERBOSE | re.DOTALL,
)
# What is left: C0 controls but tab and line feed, DEL, C1 controls, and the bidi controls
# (embeddings, overrides, isolates, marks) that reorder what a reader sees.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` without escape sequences (CSI, OSC incl. OSC-8 hyperlinks, DCS/SOS/PM/APC),
    C0/C1 control characters (tab and line feed kept) or bidi controls."""
    if not _UNSAFE.search(text):
        return text  # the common case: nothing to do
    return _UNSAFE.sub("", _SEQUENCES.sub("", text))


class SafeConsole(Console):
    """A rich console that prints no terminal control from the text it is given.

    Every renderable passes :meth:`render` (tables and panels render their cells through it
    too): text is cleaned before layout, and as a last guard every printed segment that is not
    rich's own control output is cleaned again.
    """

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        """Render like :class:`rich.console.Console`, with :func:`terminal_safe` text."""
        if isinstance(renderable, str):
            renderable = terminal_safe(renderable)
        elif isinstance(renderable, Text) and _UNSAFE.search(renderable.plain):
            renderable = self._safe_text(renderable)
        for segment in super().render(renderable, options):
            if segment.control is None and _UNSAFE.search(segment.text):
                yield Segment(terminal_safe(segment.text), segment.style)
            else:
                yield segment

    def _safe_text(self, text: Text) -> Text:
        safe = Text(
            justify=text.justify,
            overflow=text.overflow,
            no_wrap=text.no_wrap,
            end=text.end,
            tab_size=text.tab_size,
        )
        for segment in text.render(self, end=""):
            safe.append(terminal_safe(segment.text), segment.style)
        return safe


def safe_json_text(text: str) -> str:
    """JSON text with every C1 and bidi control escaped as ``\\uXXXX`` (``json.dumps`` already
    escapes C0): the same document to a parser, inert on a terminal."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
