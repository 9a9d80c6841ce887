"""Figures of a document classifier and of a referral extractor against the corpus's labels.

Pure arithmetic over (expected, predicted) pairs; ``_documents`` runs the classifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

#: Confidence buckets shown in the calibration table (lower bound inclusive).
BUCKETS: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0))
#: Equal-width bins of the expected calibration error.
ECE_BINS = 10


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


@dataclass(frozen=True)
class Outcome:
    """One document's label and one classifier's answer."""

    expected: str
    predicted: str
    confidence: float
    flagged: bool
    """The classifier said the text carries instructions (injection suspected)."""
    accepted: bool
    """The answer would count without a person: a known type at or above the threshold and
    not flagged."""
    injected: bool
    """The label: the document carries injected instructions."""
    failed: bool = False
    """The classifier raised (counted as ``unknown`` at confidence 0)."""


class ClassFigures(_Frozen):
    """Precision and recall of one class."""

    code: str
    support: int
    """Documents labelled with this class."""
    predicted: int
    """Documents the classifier put in this class."""
    precision: float | None
    """None when the classifier never predicted the class."""
    recall: float | None
    """None when no document has the class."""


class CalibrationBucket(_Frozen):
    """Claims (answers naming a known type) whose confidence falls in [low, high)."""

    low: float
    high: float
    claims: int
    mean_confidence: float | None
    accuracy: float | None


class InjectionFigures(_Frozen):
    """What became of the documents carrying injected instructions."""

    injected: int
    flagged: int
    """Injected documents the classifier flagged as carrying instructions."""
    held: int
    """Injected documents not accepted (flagged, unknown or below the threshold): a person
    looks at them before anything counts."""
    clean_flagged: int
    """Documents without injected instructions that were flagged anyway."""


class ClassifierFigures(_Frozen):
    """Every figure of one classifier on one split."""

    name: str
    documents: int
    failures: int
    accuracy: float
    """Share of documents whose predicted type (``unknown`` included) equals the label."""
    accepted: int
    """Answers that would count without a person."""
    accepted_precision: float | None
    """Share of accepted answers that are right: the figure safety depends on."""
    per_class: list[ClassFigures]
    calibration: list[CalibrationBucket]
    ece: float | None
    """Expected calibration error over the claims (``ECE_BINS`` equal-width bins)."""
    injection: InjectionFigures


class FieldFigures(_Frozen):
    """How often an extractor got one field right."""

    field: str
    right: int
    wrong: int
    """Answers that gave a value, and not the fax's (what a person would have to catch)."""
    total: int
    accuracy: float


class ExtractionFigures(_Frozen):
    """Field accuracy of one extractor over the referral faxes with known extractions."""

    name: str
    faxes: int
    failures: int
    accuracy: float
    """Right fields over all fields."""
    wrong: int
    """Values given that are not the fax's, over all fields (missing ones are not counted)."""
    fields: list[FieldFigures]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def classifier_figures(
    name: str, outcomes: Sequence[Outcome], classes: Sequence[str]
) -> ClassifierFigures:
    """Accuracy, per-class precision and recall, calibration and injection figures."""
    n = len(outcomes)
    per_class = []
    for code in classes:
        support = sum(o.expected == code for o in outcomes)
        predicted = sum(o.predicted == code for o in outcomes)
        right = sum(o.expected == code == o.predicted for o in outcomes)
        per_class.append(
            ClassFigures(
                code=code,
                support=support,
                predicted=predicted,
                precision=_ratio(right, predicted),
                recall=_ratio(right, support),
            )
        )
    claims = [o for o in outcomes if o.predicted != "unknown"]
    calibration = []
    for low, high in BUCKETS:
        inside = [o for o in claims if low <= o.confidence < high or (high == 1.0 == o.confidence)]
        calibration.append(
            CalibrationBucket(
                low=low,
                high=high,
                claims=len(inside),
                mean_confidence=_ratio(
                    round(sum(o.confidence for o in inside) * 10000), 10000 * len(inside)
                ),
                accuracy=_ratio(sum(o.expected == o.predicted for o in inside), len(inside)),
            )
        )
    accepted = [o for o in outcomes if o.accepted]
    injected = [o for o in outcomes if o.injected]
    return ClassifierFigures(
        name=name,
        documents=n,
        failures=sum(o.failed for o in outcomes),
        accuracy=_ratio(sum(o.expected == o.predicted for o in outcomes), n) or 0.0,
        accepted=len(accepted),
        accepted_precision=_ratio(sum(o.expected == o.predicted for o in accepted), len(accepted)),
        per_class=per_class,
        calibration=calibration,
        ece=expected_calibration_error([(o.confidence, o.expected == o.predicted) for o in claims]),
        injection=InjectionFigures(
            injected=len(injected),
            flagged=sum(o.flagged for o in injected),
            held=sum(not o.accepted for o in injected),
            clean_flagged=sum(o.flagged and not o.injected for o in outcomes),
        ),
    )


def expected_calibration_error(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| x share of answers;
    None for no answers."""
    if not pairs:
        return None
    total = 0.0
    for b in range(ECE_BINS):
        low, high = b / ECE_BINS, (b + 1) / ECE_BINS
        inside = [(c, r) for c, r in pairs if low <= c < high or (b == ECE_BINS - 1 and c >= high)]
        if inside:
            gap = abs(
                sum(r for _, r in inside) / len(inside) - sum(c for c, _ in inside) / len(inside)
            )
            total += gap * len(inside) / len(pairs)
    return round(total, 4)


def _normal(field: str, value: str | None) -> str:
    text = " ".join(str(value or "").lower().split())
    if field.endswith(("phone", "npi")):
        return re.sub(r"\D", "", text)
    if field.endswith("member_id") or field.endswith("diagnosis_code"):
        return re.sub(r"[^0-9a-z]", "", text)
    return re.sub(r"^dr\.? ", "", text.strip(" ."))


def extraction_figures(
    name: str,
    pairs: Sequence[tuple[Mapping[str, str], Mapping[str, str | None] | None]],
) -> ExtractionFigures:
    """Field accuracy: each (expected fields, extracted fields or None for a failed call);
    values compare after folding case, spacing, a ``Dr.`` title and a final full stop (digits
    only for phones and NPIs). Only the fields the extractor answers with count (every field
    when it never answered)."""
    claimed = {f for _, got in pairs if got is not None for f in got}
    counts: dict[str, list[int]] = {}
    for expected, got in pairs:
        for field, value in expected.items():
            if claimed and field not in claimed:
                continue
            given = _normal(field, got.get(field)) if got is not None else ""
            hit = given == _normal(field, value)
            tally = counts.setdefault(field, [0, 0, 0])
            tally[0] += hit
            tally[1] += bool(given) and not hit
            tally[2] += 1
    fields = [
        FieldFigures(field=f, right=r, wrong=w, total=t, accuracy=round(r / t, 4))
        for f, (r, w, t) in counts.items()
    ]
    right, total = sum(f.right for f in fields), sum(f.total for f in fields)
    return ExtractionFigures(
        name=name,
        faxes=len(pairs),
        failures=sum(got is None for _, got in pairs),
        accuracy=round(right / total, 4) if total else 0.0,
        wrong=sum(f.wrong for f in fields),
        fields=fields,
    )
