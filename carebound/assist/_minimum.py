"""Minimum necessary: what each task's model may see of the data it is handed.

One function per task says which fields it keeps; every other field is dropped before the call.
Identifiers no task needs (social security numbers, e-mail addresses, payer member ids) are
masked inside the text it keeps. What is dropped or masked is counted in the call's audit event,
never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from carebound.assist._config import Task

#: What a masked identifier reads in the text a model sees.
REDACTED = "[removed]"

_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_SSN_LABELLED = re.compile(r"(?i)\b(ssn|social security(?: number| no\.?)?)\s*[:#]?\s*[\d -]{9,11}")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_MEMBER_ID = re.compile(
    r"(?i)\b(member(?: id| number| no\.?)?|subscriber(?: id)?|policy(?: number| no\.?)?)"
    r"\s*[:#]?\s*[A-Z0-9-]{5,}"
)


@dataclass(frozen=True)
class Minimised:
    """The data a model may see, and how much was taken out (counts only)."""

    data: dict[str, str]
    dropped_fields: int
    masked: int


def _mask(text: str) -> tuple[str, int]:
    count = 0

    def sub(pattern: re.Pattern[str], text: str, keep_label: bool) -> str:
        nonlocal count

        def repl(m: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return f"{m.group(1)}: {REDACTED}" if keep_label else REDACTED

        return pattern.sub(repl, text)

    text = sub(_SSN_LABELLED, text, True)
    text = sub(_SSN, text, False)
    text = sub(_EMAIL, text, False)
    text = sub(_MEMBER_ID, text, True)
    return text, count


def _keeping(*fields: str, mask: bool = True) -> Callable[[Mapping[str, str]], Minimised]:
    def minimise(data: Mapping[str, str]) -> Minimised:
        kept: dict[str, str] = {}
        masked = 0
        for name in fields:
            if name in data:
                value, n = _mask(data[name]) if mask else (data[name], 0)
                kept[name] = value
                masked += n
        return Minimised(kept, len(set(data) - set(fields)), masked)

    return minimise


minimum_for_classify = _keeping("document_text")
"""classify keeps the document's text only (the type, date, patient and sender are read from
it); no case data, no run or reviewer names; SSNs, e-mail addresses and member ids masked."""

minimum_for_extract = _keeping("document_text")
"""extract keeps the faxed referral's text only (the patient's name, birth date and the order
are what it extracts); SSNs, e-mail addresses and member ids masked."""

minimum_for_draft = _keeping("items", "deadline", "office", "channel", "attempt")
"""draft keeps what is requested (item names and codes), the reply deadline, the office's name,
the channel and the attempt number: never the patient's name, birth date or any identifier."""

minimum_for_summarise = _keeping("facts", "checks", "question")
"""summarise keeps the packet's facts (each with its id), its checks and the question asked of
the reviewer; fact values pass with identifiers masked."""

MINIMUM: Mapping[Task, Callable[[Mapping[str, str]], Minimised]] = {
    "classify": minimum_for_classify,
    "extract": minimum_for_extract,
    "draft": minimum_for_draft,
    "summarise": minimum_for_summarise,
}
"""The minimum-necessary function of every task."""
