"""Instructions aimed at software or staff, found in a document's text (DOC-2).

``detect_injection(text)`` is pure and deterministic. It reads the text the ways an attacker
hides instructions (``_normalize.readings``: homoglyphs, invisible characters, letter spacing,
leetspeak, base64/hex/percent/ROT13, HTML comments, markdown links, lines split apart), matches
the cues of ``_injection_cues`` on every reading, and adds up one weight per kind of cue found,
plus ``CONCEALMENT_WEIGHT`` when a cue was found only in hidden or disguised text. A total of
``FLAG_AT`` or more flags the document. The report names each kind found, the language, how it
was hidden, and quotes the original passage.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from ._injection_cues import CUES, LABELS, WEIGHTS
from ._normalize import MAX_SCAN_CHARS, Reading, readings

#: Total weight at which a document is flagged as carrying instructions.
FLAG_AT = 1.0
#: Added once when some cue was found only in text hidden from a human reader.
CONCEALMENT_WEIGHT = 0.5
_MAX_PASSAGE = 240
_MAX_FINDINGS = 12


class InjectionFinding(BaseModel):
    """One kind of instruction-like content, where it was found, and the passage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    """``override``, ``role``, ``addressee``, ``no_review``, ``tool_call``, ``leak``,
    ``output``, ``directive``, ``exfiltration`` or ``pressure``."""
    label: str
    """What that kind means, in words (no document text)."""
    language: str
    """Language of the matching cue (ISO 639-1)."""
    via: str
    """How it was read: ``text``, ``homoglyphs``, ``base64``, ``HTML comment`` ..."""
    concealed: bool
    """Found only in text a human reader would not see as such."""
    lines: tuple[int, int]
    """First and last line (0-based) of the document the passage spans."""
    passage: str
    """The passage, quoted from the document (PHI: a document's text)."""
    weight: float


class InjectionReport(BaseModel):
    """Whether a document's text carries instructions aimed at software or staff, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    score: float = Field(ge=0.0)
    """Sum of the weights of the kinds found (plus concealment); flagged at ``FLAG_AT``."""
    flagged: bool
    findings: tuple[InjectionFinding, ...] = ()
    """One per kind found, strongest first."""

    @property
    def explanation(self) -> str:
        """The kinds found and how they were hidden, without quoting the document (PHI-free)."""
        if not self.findings:
            return "no instructions aimed at software or staff found"
        parts = []
        for f in self.findings:
            how = "" if f.via == "text" else f", read through {f.via}"
            parts.append(f"{f.label} ({f.language}{how})")
        verdict = "flagged" if self.flagged else "below the flag threshold"
        return f"{verdict} (score {self.score:.1f}): " + "; ".join(parts)

    @property
    def flagged_lines(self) -> frozenset[int]:
        """Original line indexes that carry a finding."""
        return frozenset(line for f in self.findings for line in range(f.lines[0], f.lines[1] + 1))


def _quote(lines: list[str], reading: Reading, span: range) -> str:
    if reading.raw:
        text = " ".join(reading.raw.split())
        return f"[{reading.via}] {text}"[:_MAX_PASSAGE]
    text = " / ".join(" ".join(lines[i].split()) for i in span if i < len(lines))
    return text[:_MAX_PASSAGE]


@lru_cache(maxsize=32)  # a run reads a handful of documents; bounds the memory held
def detect_injection(text: str) -> InjectionReport:
    """Score ``text`` for instructions aimed at software or staff (see the module docstring).

    Pure; results are cached by text (a run's planner, tool facts and packet read the same
    document).
    """
    original = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    best: dict[str, InjectionFinding] = {}
    for reading in readings(text):
        for cue in CUES:
            current = best.get(cue.kind)
            if current is not None and not current.concealed:
                continue  # already found in plain sight: nothing to add
            pattern = cue.compact if reading.compact else cue.pattern
            match = pattern.search(reading.text)
            if match is None:
                continue
            span = reading.lines_of(match.start(), match.end())
            concealed = reading.concealed or bool(reading.disguised_lines.intersection(span))
            if current is not None and concealed:
                continue
            via = reading.via
            if concealed and via == "text":
                via = "homoglyphs"
            best[cue.kind] = InjectionFinding(
                kind=cue.kind,
                label=LABELS[cue.kind],
                language=cue.language,
                via=via,
                concealed=concealed,
                lines=(span.start, span.stop - 1),
                passage=_quote(original, reading, span),
                weight=WEIGHTS[cue.kind],
            )
    if len(text) > MAX_SCAN_CHARS:
        # What lies past the limit was not read: instructions could hide there.
        best["unscanned"] = InjectionFinding(
            kind="unscanned",
            label=LABELS["unscanned"],
            language="",
            via="length",
            concealed=False,
            lines=(len(original) - 1, len(original) - 1),
            passage=f"(text past the first {MAX_SCAN_CHARS:,} of {len(text):,} characters)",
            weight=WEIGHTS["unscanned"],
        )
    findings = sorted(best.values(), key=lambda f: (-f.weight, f.lines, f.kind))[:_MAX_FINDINGS]
    score = sum(f.weight for f in findings)
    if any(f.concealed for f in findings):
        score += CONCEALMENT_WEIGHT
    return InjectionReport(
        score=round(score, 2), flagged=score >= FLAG_AT, findings=tuple(findings)
    )


__all__ = [
    "CONCEALMENT_WEIGHT",
    "FLAG_AT",
    "InjectionFinding",
    "InjectionReport",
    "detect_injection",
]
