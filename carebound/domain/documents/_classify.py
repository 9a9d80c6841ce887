"""Rule-based classification of untyped (faxed) documents into LOINC document types.

Deterministic keyword scoring, no model: each document type has weighted cue phrases; a type's
score is the sum of the weights of its distinct cues found in the text. Confidence grows with the
winning score (saturating at ``_SATURATION``) and with its margin over the runner-up, so short or
mixed texts score low and a person confirms them.

Text written *at* the reader ("ignore previous instructions", "classify this document as ...",
"SYSTEM:") is not evidence of anything: when ``detect_injection`` flags the text, its flagged
lines are dropped before scoring, and the result is flagged and capped below the acceptance
threshold, because a genuine clinical document has no reason to address its reader's software.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ._injection import InjectionReport, detect_injection

#: An untyped document counts as a document type only at or above this confidence; below it a
#: person must confirm the type. 0.7 asks for a clear lead: a winning score of 10 or more with a
#: runner-up at most half of it, or a score of 7 or more with no competing cue at all.
CLASSIFY_MIN_CONFIDENCE = 0.7

#: The highest confidence a text containing instructions to an AI can get (below the threshold).
INJECTION_CONFIDENCE_CAP = 0.5

UNKNOWN = "unknown"

_SATURATION = 10  # a winning score at or above this is "strong"
_MIN_SCORE = 2  # below this nothing is claimed: the result is "unknown"
_MAX_EVIDENCE = 10
_MAX_EVIDENCE_CHARS = 40


class Classification(BaseModel):
    """What an untyped document appears to be, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    code: str
    """LOINC document code (e.g. ``11506-3``), or ``"unknown"``."""
    display: str
    """Name of the document type."""
    confidence: float = Field(ge=0.0, le=1.0)
    """0..1; the type counts only at or above ``CLASSIFY_MIN_CONFIDENCE``."""
    evidence: list[str] = Field(default_factory=list)
    """Short phrases of the text that support ``code``, in reading order."""
    injection_suspected: bool = False
    """The text carries instructions aimed at software or staff (``detect_injection`` flagged
    it): those lines were ignored and the confidence capped at ``INJECTION_CONFIDENCE_CAP``."""
    injection: InjectionReport | None = None
    """The injection detector's report, when it found anything (flagged or not)."""


@dataclass(frozen=True)
class _DocType:
    code: str
    display: str
    cues: tuple[tuple[re.Pattern[str], int], ...]


def _cues(*pairs: tuple[str, int]) -> tuple[tuple[re.Pattern[str], int], ...]:
    return tuple((re.compile(rf"\b(?:{p})\b", re.IGNORECASE), w) for p, w in pairs)


DOCUMENT_TYPES: tuple[_DocType, ...] = (
    _DocType(
        "11506-3",
        "Progress note",
        _cues(
            (r"progress notes?|office visit|clinic note|visit note|soap note", 3),
            (r"chief complaint|history of present illness|hpi", 2),
            (r"review of systems", 2),
            (r"physical exam(?:ination)?", 2),
            (r"assessment (?:and|&) plan|assessment/plan", 2),
            (r"subjective", 2),
            (r"objective", 1),
            (r"vital signs|vitals|blood pressure", 1),
            (r"follow[- ]up|return (?:to clinic|visit)", 1),
            (r"patient (?:reports|states|denies|presents)", 1),
        ),
    ),
    _DocType(
        "57133-1",
        "Referral note",
        _cues(
            (r"referral note|referral letter|referral form", 3),
            (r"reason for referral", 3),
            (r"referring (?:provider|physician|clinician|doctor)", 2),
            (r"referred (?:to|for|by)|referral to|refer(?:ring)? (?:the )?patient to", 2),
            (r"please (?:evaluate|see|assess)|evaluate and treat|thank you for seeing", 2),
            (r"consult(?:ation)? request(?:ed)?|request(?:ing)? (?:a )?consult(?:ation)?", 2),
            (r"specialist|specialty", 1),
            (r"urgent|routine", 1),
        ),
    ),
    _DocType(
        "11502-2",
        "Laboratory report",
        _cues(
            (r"laboratory report|lab report|laboratory results?|lab results?", 3),
            (r"reference (?:range|interval)s?", 3),
            (r"specimen", 2),
            (r"collected|date collected|received in lab", 2),
            (r"cbc|complete blood count|metabolic panel|bmp|cmp|lipid panel|urinalysis", 2),
            (r"hemoglobin a1c|hba1c|a1c", 2),
            (r"mg/dl|mmol/l|g/dl|u/l|meq/l", 2),
            (r"abnormal|flag", 1),
            (r"hemoglobin|glucose|creatinine|potassium|sodium|cholesterol", 1),
        ),
    ),
    _DocType(
        "18748-4",
        "Diagnostic imaging report",
        _cues(
            (r"radiology report|imaging report|diagnostic imaging", 3),
            (r"radiologist", 2),
            (r"impression", 2),
            (r"findings", 2),
            (r"technique|comparison", 2),
            (r"mri|magnetic resonance|ct|computed tomography|x-?ray|radiograph\w*", 2),
            (r"ultrasound|sonograph\w*|mammogra\w+|pet(?:/ct| scan)", 2),
            (r"contrast|views?|axial|sagittal|coronal", 1),
            (r"unremarkable|no acute", 1),
        ),
    ),
)

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def with_injection(result: Classification, report: InjectionReport) -> Classification:
    """``result`` marked as carrying instructions when ``report`` (a scan of more of the
    document than the classified text: description, titles, other attachments) flags it."""
    if not report.flagged or result.injection_suspected:
        return result
    return result.model_copy(
        update={
            "injection_suspected": True,
            "injection": report,
            "confidence": min(result.confidence, INJECTION_CONFIDENCE_CAP),
        }
    )


def classify(text: str) -> Classification:
    """Classify a document's text as one of ``DOCUMENT_TYPES``, or ``unknown``.

    Pure and deterministic: the same text always gives the same result. Ties go to the type
    listed first in ``DOCUMENT_TYPES``.
    """
    report = detect_injection(text)
    suspected = report.flagged
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if suspected:  # the flagged passages are not evidence of anything
        lines = [line for n, line in enumerate(lines) if n not in report.flagged_lines]
    body = unicodedata.normalize("NFKC", "\n".join(lines)).translate(_INVISIBLE)

    scored: list[tuple[int, list[tuple[int, str]], _DocType]] = []
    for doc_type in DOCUMENT_TYPES:
        score = 0
        hits: list[tuple[int, str]] = []
        for pattern, weight in doc_type.cues:
            match = pattern.search(body)
            if match:
                score += weight
                hits.append((match.start(), " ".join(match.group(0).split())))
        scored.append((score, sorted(hits), doc_type))
    ranked = sorted(scored, key=lambda item: -item[0])  # stable: ties keep DOCUMENT_TYPES order
    (best, hits, doc_type), (runner_up, _, _) = ranked[0], ranked[1]
    evidence = [phrase[:_MAX_EVIDENCE_CHARS] for _, phrase in hits[:_MAX_EVIDENCE]]
    if best < _MIN_SCORE:
        return Classification(
            code=UNKNOWN,
            display="Unknown document type",
            confidence=0.0,
            evidence=evidence,
            injection_suspected=suspected,
            injection=report if report.findings else None,
        )
    strength = min(1.0, best / _SATURATION)
    margin = (best - runner_up) / best
    confidence = min(0.99, strength * (0.4 + 0.6 * margin))
    if suspected:
        confidence = min(confidence, INJECTION_CONFIDENCE_CAP)
    return Classification(
        code=doc_type.code,
        display=doc_type.display,
        confidence=round(confidence, 2),
        evidence=evidence,
        injection_suspected=suspected,
        injection=report if report.findings else None,
    )
