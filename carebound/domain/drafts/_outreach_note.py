"""The free-text part of an outreach message, as a model drafted it, checked before it is used.

A document request is rule-made except for one short paragraph: the recipient, the referral and
request ids, the patient's name and birth date, the requested items (with their LOINC codes) and
the reply instructions come from the case and the pack, and the model writes only a courteous
note between them. ``check_outreach_note`` refuses a note that could change what the message
asks, of whom, or by when, or that says more than the rule-made parts do:

- ``numbers``: any digit, in any script. Codes, ids, dates, deadlines, phone and fax numbers
  and attempt counts are rule-made, so the note needs none;
- ``deadline``: words that set a time (weekdays, months, "tomorrow", "within", "deadline",
  "urgent"...): the schedule is the pack's;
- ``fixed_parts``: words that restate the rule-made parts ("attempt", "LOINC", "quote",
  "Task", "ServiceRequest", "request id");
- ``other_documents``: a document type the request does not ask for (it would add an item);
- ``patient_data``: any of the case's patient data (``protected``: name parts, birth date,
  member id, address, phone, e-mail, reason for referral). The recipient is entitled to what the
  rule-made part carries, and the note needs none of it;
- ``links``: URLs, web or e-mail addresses;
- ``markup``: HTML, brackets, braces, back-ticks, or lines that look like list items;
- ``instructions``: anything ``detect_injection`` finds (any score, not only a flagged one),
  and directions to act elsewhere (call, click, log in, reply to, send ... to, pay ...);
- ``too_long``: more than ``MAX_NOTE_CHARS`` characters or ``MAX_NOTE_LINES`` lines.

Problems name the kind of content, never the content itself (the note may hold PHI).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from carebound.domain.documents import DOCUMENT_TYPES, detect_injection

#: The longest note accepted, in characters and lines.
MAX_NOTE_CHARS = 600
MAX_NOTE_LINES = 6

_DIGIT = re.compile(r"\d")  # str patterns: \d matches every Unicode decimal digit
_LINK = re.compile(
    r"https?:|ftp:|www\.|@|\b[\w-]+\.(?:com|org|net|gov|edu|io|us|info|biz|health|co|ly|me)\b",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"[<>{}\[\]`|\\]|^\s*(?:[-*+#>•]|\w[.)])\s", re.MULTILINE)
_DEADLINE = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tonight|tomorrow|"
    r"yesterday|week|weeks|weekend|month|months|hours?|days?|deadline|due|within|asap|urgent|"
    r"urgently|immediately|expire[sd]?|january|february|march|april|june|july|august|"
    r"september|october|november|december|eod|cob)\b",
    re.IGNORECASE,
)
_FIXED = re.compile(
    r"\b(?:attempts?|loinc|quote|task|servicerequest|request id|reference number|"
    r"case id|order id|npi|member id|fax number|phone number)\b",
    re.IGNORECASE,
)
_ELSEWHERE = re.compile(
    r"\b(?:call|phone|dial|text|e-?mail|visit (?:our|the|this|that|us)|click|tap|log ?in|"
    r"sign ?in|download|upload|scan|forward|pay|payment|wire|password|verify your|"
    r"open the (?:attachment|link|file)|reply to|respond to|contact (?:us|our|the) at|"
    r"(?:send|fax|mail|post) (?:it|them|these|this|those|the \w+|documents?|records?)"
    r"(?: \w+)? to)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NoteCheck:
    """The verdict on a drafted note: usable, or refused with the kinds of problem found."""

    problems: tuple[str, ...]
    """Problem codes (``numbers``, ``patient_data``, ``links``...; see the module docstring)."""

    @property
    def ok(self) -> bool:
        """Whether the note may be used (no problem found)."""
        return not self.problems

    @property
    def explanation(self) -> str:
        """The problems in words, without quoting the note."""
        if self.ok:
            return "the drafted note passed every check"
        return "refused: " + "; ".join(_WORDS[p] for p in self.problems)


_WORDS = {
    "empty": "the draft is empty",
    "too_long": f"longer than {MAX_NOTE_CHARS} characters or {MAX_NOTE_LINES} lines",
    "numbers": "it contains digits (codes, ids, dates and deadlines are rule-made)",
    "deadline": "it sets or implies a time (the schedule is the pack's)",
    "fixed_parts": "it restates or alters the rule-made parts (attempt, ids, codes)",
    "other_documents": "it names a document the request does not ask for",
    "patient_data": "it carries the patient's data (the rule-made part carries what the "
    "recipient is entitled to)",
    "links": "it contains a link, a web address or an e-mail address",
    "markup": "it contains markup, brackets or list items",
    "instructions": "it contains instructions (to software, or to act elsewhere)",
}


def _plain(text: str) -> str:
    """Accents removed, compatibility forms unified, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(stripped.casefold().split())


def _mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (both already plain)."""
    return bool(phrase) and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def check_outreach_note(
    note: str, *, protected: Sequence[str] = (), requested: Sequence[str] = ()
) -> NoteCheck:
    """Check the free text a model drafted for an outreach message (see the module docstring).

    ``protected``: the case's patient data the note must not carry (pass name parts one by
    one); ``requested``: the displays of the items the request asks for (naming those is fine).
    """
    problems: list[str] = []
    if not note.strip():
        return NoteCheck(problems=("empty",))
    plain = _plain(note)
    if len(note) > MAX_NOTE_CHARS or len(note.strip().splitlines()) > MAX_NOTE_LINES:
        problems.append("too_long")
    if _DIGIT.search(unicodedata.normalize("NFKC", note)):
        problems.append("numbers")
    if _DEADLINE.search(plain):
        problems.append("deadline")
    if _FIXED.search(plain):
        problems.append("fixed_parts")
    asked = {_plain(r) for r in requested}
    if any(
        _mentions(plain, _plain(t.display)) and _plain(t.display) not in asked
        for t in DOCUMENT_TYPES
    ):
        problems.append("other_documents")
    if any(_mentions(plain, _plain(value)) for value in protected if len(value.strip()) >= 2):
        problems.append("patient_data")
    if _LINK.search(note):
        problems.append("links")
    if _MARKUP.search(note):
        problems.append("markup")
    if detect_injection(note).findings or _ELSEWHERE.search(plain):
        problems.append("instructions")
    return NoteCheck(problems=tuple(problems))
