"""A plain-language packet summary a model wrote, kept sentence by sentence only where it rests on
the facts it cites.

The model is shown the packet's facts, each with an id (``F1``, ``F2``...), and asked for short
sentences that each end with the ids they rest on (``The order is active [F3].``).
``check_cited_summary`` splits the reply into sentences (at ``.``, ``!`` or ``?`` followed by a
space, not inside a number or after a common abbreviation; and at line breaks, list markers
removed) and keeps a sentence only when every check passes:

- ``uncited``: it cites no fact (citations are ``[F3]`` or ``[F1, F4]``);
- ``unknown_fact``: it cites an id the packet does not have;
- ``unsupported_number``: a number in it (digits; month names and the words two to twelve, as
  their numbers) is not among the numbers of the facts it cites (leading zeros ignored, so
  ``March 3, 2026`` rests on ``2026-03-03``);
- ``unsupported_name``: a capitalised word, or an id-like word (with a digit, ``/``, ``_`` or
  ``-`` inside), that is not in the text of the facts it cites; a common word opening the
  sentence and a few acronyms of the trade (EHR, FHIR, LOINC, NPI...) are exempt;
- ``instructions``: instructions aimed at software or people (``detect_injection`` finds any
  cue), a link, or a recommendation (recommend, should, must, approve, reject, you...) that the
  cited facts do not themselves contain: deciding is the reviewer's, recommending the rules';
- ``too_long``: a sentence over ``MAX_SENTENCE_CHARS`` characters;
- ``over_limit``: past the first ``MAX_SUMMARY_SENTENCES`` kept sentences.

What it cannot see: a wrong claim in words alone ("the order is revoked" citing a fact that
says active) passes when it states no number or name the fact lacks. That is why the summary is
shown as model-written, beside the facts, and never replaces them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from carebound.domain.documents import detect_injection

MAX_SUMMARY_SENTENCES = 8
MAX_SENTENCE_CHARS = 400

_CITE = re.compile(r"\[\s*(F\d{1,3}(?:\s*[,;]\s*F\d{1,3})*)\s*\]", re.IGNORECASE)
_CITES_AFTER = re.compile(r"(?:\s*\[\s*F\d{1,3}(?:\s*[,;]\s*F\d{1,3})*\s*\])+", re.IGNORECASE)
_END = re.compile(r"[.!?]+(?=\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_][\w'\u2019./-]*[\w]|[^\W_]", re.UNICODE)
_LINK = re.compile(r"https?:|www\.|@", re.IGNORECASE)
_RECOMMENDING = re.compile(
    r"\b(?:recommend\w*|should|must|approve\w*|reject\w*|accept\w*|decline\w*|deny|denied|"
    r"you|your|please|ignore\w*|instruct\w*)\b",
    re.IGNORECASE,
)
_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "st", "vs", "no", "e.g", "i.e", "approx"})
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTHS = {name: n for n, name in enumerate(_MONTH_NAMES, start=1)}
_MONTHS.update({name[:3]: n for name, n in list(_MONTHS.items())})
_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        (
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ),
        start=2,
    )
}
_OPENERS = frozenset(
    re.findall(
        r"\w+",
        "a an the this that these those it its there here no not none one both all each every "
        "some any another neither either only also and but so yet as at by for from in of on to "
        "with without while when where which who whose after before since until although though "
        "because if unless than then however moreover overall currently",
    )
)
_TRADE = frozenset({"ehr", "fhir", "loinc", "npi", "id", "ids", "phi", "pa", "icd", "i"})


@dataclass(frozen=True)
class SummaryFact:
    """One fact as the model was shown it: its id and its text (label and value)."""

    id: str
    text: str


@dataclass(frozen=True)
class CitedSentence:
    """A sentence kept: its text as written (citations included) and the ids it cites."""

    text: str
    cites: tuple[str, ...]


@dataclass(frozen=True)
class DroppedSentence:
    """A sentence dropped, and why (a code of the module docstring)."""

    text: str
    reason: str
    cites: tuple[str, ...] = ()


@dataclass(frozen=True)
class CitedSummary:
    """The sentences kept, in order, and those dropped with their reasons."""

    kept: tuple[CitedSentence, ...]
    dropped: tuple[DroppedSentence, ...]

    @property
    def text(self) -> str:
        """The kept sentences, joined."""
        return " ".join(s.text for s in self.kept)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(stripped.casefold().split())


def sentences(text: str) -> list[str]:
    """``text`` split into sentences, each with the citations that follow it."""
    out: list[str] = []
    for raw_line in unicodedata.normalize("NFKC", text).splitlines():
        line = " ".join(_BULLET.sub("", raw_line).split())
        start = 0
        for end in _END.finditer(line):
            before = line[start : end.start()].rsplit(" ", 1)[-1].casefold()
            if before in _ABBREVIATIONS:
                continue
            stop = end.end()
            cites = _CITES_AFTER.match(line, stop)
            if cites is not None:
                stop = cites.end()
            if line[start:stop].strip():
                out.append(line[start:stop].strip())
            start = stop
        if line[start:].strip():
            out.append(line[start:].strip())
    return out


def _numbers(text: str) -> set[str]:
    found = set()
    for token in _NUMBER.findall(text):
        for part in re.split(r"[,]", token) if "," in token and "." not in token else [token]:
            found.add(part.lstrip("0") or "0")
    return found


def _claimed_numbers(claim: str) -> set[str]:
    found = _numbers(claim)
    for word in re.findall(r"[^\W\d_]+", _plain(claim)):
        if word in _MONTHS:
            found.add(str(_MONTHS[word]))
        elif word in _NUMBER_WORDS:
            found.add(str(_NUMBER_WORDS[word]))
    return found


def _unsupported_name(claim: str, support: str) -> bool:
    for i, match in enumerate(_WORD.finditer(claim)):
        word = match.group(0).rstrip(".")
        if _NUMBER.fullmatch(word):
            continue  # a plain number: the number check's
        idlike = any(c.isdigit() for c in word) or any(c in "/_-" for c in word)
        if not (idlike or any(c.isupper() for c in word)):
            continue
        folded = _plain(word)
        if (i == 0 and folded in _OPENERS) or folded in _TRADE or folded in _MONTHS:
            continue
        if re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", support) is None:
            return True
    return False


def _problem(claim: str, cites: Sequence[str], facts: dict[str, str]) -> str | None:
    if not cites:
        return "uncited"
    if any(c not in facts for c in cites):
        return "unknown_fact"
    if len(claim) > MAX_SENTENCE_CHARS:
        return "too_long"
    support = _plain(" ".join(facts[c] for c in cites))
    if detect_injection(claim).findings or _LINK.search(claim):
        return "instructions"
    for word in _RECOMMENDING.findall(claim):
        if re.search(rf"(?<!\w){re.escape(word.casefold())}(?!\w)", support) is None:
            return "instructions"
    if not _claimed_numbers(claim) <= _numbers(support):
        return "unsupported_number"
    if _unsupported_name(claim, support):
        return "unsupported_name"
    return None


def check_cited_summary(text: str, facts: Sequence[SummaryFact]) -> CitedSummary:
    """Keep the sentences of ``text`` that rest on the ``facts`` they cite (module docstring)."""
    known = {f.id.upper(): f.text for f in facts}
    kept: list[CitedSentence] = []
    dropped: list[DroppedSentence] = []
    for sentence in sentences(text):
        cites = tuple(
            dict.fromkeys(
                c.strip().upper()
                for group in _CITE.findall(sentence)
                for c in re.split(r"[,;]", group)
            )
        )
        claim = " ".join(_CITE.sub(" ", sentence).split())
        reason = _problem(claim, cites, known)
        if reason is None and len(kept) >= MAX_SUMMARY_SENTENCES:
            reason = "over_limit"
        if reason is None:
            kept.append(CitedSentence(text=sentence, cites=cites))
        else:
            dropped.append(DroppedSentence(text=sentence, reason=reason, cites=cites))
    return CitedSummary(kept=tuple(kept), dropped=tuple(dropped))
