# ruff: noqa: RUF001 - lookalike punctuation in the gap pattern
"""The cues of instruction-like text aimed at software or staff, by kind and language.

Patterns match *normalised* text (see ``_normalize.fold``): lower case, accents removed, ASCII
letters where the original imitated them. A space in a pattern matches any run of spaces and
light punctuation. Kinds and their weights (a document is flagged at a total of 1.0):

- ``override`` (1.0): ignore / disregard / forget earlier instructions, prompts or rules;
- ``role`` (1.0): a role or chat-markup claim ("SYSTEM:", "<|im_start|>", "you are now ...");
- ``addressee`` (1.0): text addressed to an AI or automated system ("note to the AI agent");
- ``no_review`` (1.0): asks to skip people ("no human review needed", "do not flag this");
- ``tool_call`` (1.0): a tool or function call written out (JSON with a tool name and arguments);
- ``leak`` (1.0): asks to reveal a prompt, credentials or every patient's records;
- ``output`` (0.5): dictates the reader's answer ("just print", "reply only with");
- ``directive`` (0.5): tells the reader to approve, classify, or change records;
- ``exfiltration`` (0.6): send the full chart or record to somewhere;
- ``pressure`` (0.3): manipulative urgency ("you may not deviate", "this is a test").

Clinical instructions to patients and staff ("take two tablets", "please fax results to",
"ignore the previous lab value, it was hemolysed", "disregard the previous dosing instructions")
are deliberately outside these patterns: they name no software, prompt or rule set.

The patterns themselves live by family in ``_injection_cues_control`` and
``_injection_cues_actions``; their shared words in ``_injection_cue_words``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._injection_cues_actions import ACTIONS
from ._injection_cues_control import CONTROL

_GAP = r"[\s,;:'\"*_\-–—.<>]+"
_COMPACT_GAP = r"[\s,;:'\"*_\-–—.<>]*"


def _p(pattern: str, gap: str = _GAP) -> re.Pattern[str]:
    """Compile a cue: a space matches a gap, an optional space an optional gap."""
    return re.compile(pattern.replace(" ?", f"(?:{gap})?").replace(" ", gap), re.MULTILINE)


def _compact(pattern: str) -> re.Pattern[str]:
    """The cue for letter-spaced text read without its gaps: gaps and word edges optional."""
    return _p(pattern.replace(r"\b", ""), _COMPACT_GAP)


@dataclass(frozen=True)
class Cue:
    """One pattern of one kind, in one language."""

    kind: str
    language: str
    pattern: re.Pattern[str]
    compact: re.Pattern[str]
    """The same cue for letter-spaced text read without its gaps ("ignoreallprevious...")."""


WEIGHTS: dict[str, float] = {
    "override": 1.0,
    "role": 1.0,
    "addressee": 1.0,
    "no_review": 1.0,
    "tool_call": 1.0,
    "leak": 1.0,
    "output": 0.5,
    "directive": 0.5,
    "exfiltration": 0.6,
    "pressure": 0.3,
    "harmful_task": 1.0,
    "role_hint": 0.5,
    "mentions_ai": 0.5,
    "unscanned": 1.0,
}

LABELS: dict[str, str] = {
    "override": "asks to ignore or replace earlier instructions",
    "role": "claims a system or assistant role, or carries chat markup",
    "addressee": "addresses an AI or automated system",
    "no_review": "asks to skip human review or holds",
    "tool_call": "contains a tool or function call",
    "leak": "asks to reveal prompts, credentials or other patients' data",
    "output": "dictates what the reader should answer",
    "directive": "tells the reader to approve, classify or change records",
    "exfiltration": "asks to send a full chart or record elsewhere",
    "pressure": "manipulative urgency",
    "harmful_task": "asks for content unrelated to care (toxic or offensive text)",
    "role_hint": "a line labelled as a system's or an assistant's turn",
    "mentions_ai": "mentions AI or automated readers",
    "unscanned": "too long to read in full: a person reads it",
}
CUES: tuple[Cue, ...] = tuple(
    Cue(kind, lang, _p(pattern), _compact(pattern)) for kind, lang, pattern in (*CONTROL, *ACTIONS)
)
