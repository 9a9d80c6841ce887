"""``carebound eval documents``: classifiers and extractors measured on the labelled corpus.

``evaluate_documents()`` runs the rule classifier, the local model and any chat-model
classifier it is given over one split of the corpus (the held-out split by default: the local
model never saw it) and returns every figure as one typed ``DocumentsEvaluation``;
``render_evaluation`` prints it as tables. No network: a chat model is whatever the caller
passes (a fake one in the tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from carebound.domain.documents import CLASSIFY_MIN_CONFIDENCE, UNKNOWN, Classification, classify
from carebound.domain.documents._local_model import CLASSES, classify_local

from ._corpus import CorpusDocument, corpus_sha256, load_corpus
from ._metrics import (
    ClassifierFigures,
    ExtractionFigures,
    Outcome,
    classifier_figures,
    extraction_figures,
)


class Decided(NamedTuple):
    """A classification, and whether it would count without a person, when that is decided by
    more than the classification itself (a model cross-checked by the rules)."""

    classification: Classification
    accepted: bool


if TYPE_CHECKING:
    from carebound.assist import ModelCall, ModelConfig

DocumentClassifier = Callable[[str], Classification | Decided]
"""A document's text -> what it is (the rule classifier's signature), optionally ``Decided``."""
ReferralExtractor = Callable[[str], Mapping[str, str | None]]
"""A referral fax's text -> its fields, named as ``ExtractionLabel.fields()`` names them."""

BUILT_IN: dict[str, DocumentClassifier] = {"rules": classify, "local": classify_local}
"""The classifiers every evaluation runs: the rules, and the local model."""


class DocumentsEvaluation(BaseModel):
    """Every figure of one evaluation (``carebound eval documents --json`` prints it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    split: Literal["train", "heldout"]
    documents: int
    corpus_sha256: str
    threshold: float
    """A type counts without a person at or above this confidence (``CLASSIFY_MIN_CONFIDENCE``)."""
    classifiers: list[ClassifierFigures]
    extraction: list[ExtractionFigures]
    """One per extractor given; empty when none is (the rules extract nothing)."""
    model_calls: dict[str, dict[str, int]] = {}
    """Calls made to the configured chat models, by task (``classify``, ``extract``) and
    outcome (``ok``, ``invalid``, ``timeout``, ``error``); empty with no model."""


def accepted(result: Classification) -> bool:
    """Would this classification count without a person? (A known type, confident, clean.)"""
    return (
        result.code != UNKNOWN
        and result.confidence >= CLASSIFY_MIN_CONFIDENCE
        and not result.injection_suspected
    )


def _outcome(document: CorpusDocument, classifier: DocumentClassifier) -> Outcome:
    injected = document.traits.injected
    try:
        answer = classifier(document.text)
    except Exception:  # a failing model is a figure of the evaluation, not its end
        return Outcome(document.label.type, UNKNOWN, 0.0, False, False, injected, failed=True)
    result, counts = answer if isinstance(answer, Decided) else (answer, accepted(answer))
    return Outcome(
        expected=document.label.type,
        predicted=result.code,
        confidence=result.confidence,
        flagged=result.injection_suspected,
        accepted=counts,
        injected=injected,
    )


def _extracted(text: str, extractor: ReferralExtractor) -> Mapping[str, str | None] | None:
    try:
        return extractor(text)
    except Exception:  # counted as a failure: every field of that fax is wrong
        return None


@lru_cache(maxsize=2)
def _built_in_figures(split: Literal["train", "heldout"]) -> tuple[ClassifierFigures, ...]:
    """The rules' and the local model's figures: pure classifiers over the shipped corpus, so
    measured once per process and split."""
    documents = load_corpus(split)
    return tuple(
        classifier_figures(name, [_outcome(d, run) for d in documents], CLASSES)
        for name, run in BUILT_IN.items()
    )


def evaluate_documents(
    *,
    split: Literal["train", "heldout"] = "heldout",
    classifiers: Mapping[str, DocumentClassifier] | None = None,
    extractors: Mapping[str, ReferralExtractor] | None = None,
    built_in: bool = True,
    models: ModelConfig | None = None,
) -> DocumentsEvaluation:
    """Measure the rule classifier and the local model (unless ``built_in`` is false) and
    ``classifiers`` (name -> classifier, e.g. a chat model's) on ``split``, and ``extractors``
    on its referral faxes. With ``models`` configured, the referral agents' chat-model
    classification (``chat`` and ``chat+rules``) and extraction (``chat extract`` and
    ``chat+grounding extract``) too, see ``carebound.eval._chat``."""
    documents = load_corpus(split)
    every = dict(classifiers or {})
    extract = dict(extractors or {})
    context = None
    if models is not None and models.configured:
        from ._chat import EvalContext, chat_classifiers, chat_extractors

        context = EvalContext(models)
        if models.model_for("classify") is not None:
            every.update(chat_classifiers(context))
        if models.model_for("extract") is not None:
            extract.update({f"{n} extract": run for n, run in chat_extractors(context).items()})
    figures = list(_built_in_figures(split)) if built_in else []
    figures += [
        classifier_figures(name, [_outcome(d, run) for d in documents], CLASSES)
        for name, run in every.items()
    ]
    faxes = [d for d in documents if d.extraction is not None]
    extraction = [
        extraction_figures(
            name,
            [(d.extraction.fields(), _extracted(d.text, run)) for d in faxes if d.extraction],
        )
        for name, run in extract.items()
    ]
    return DocumentsEvaluation(
        split=split,
        documents=len(documents),
        corpus_sha256=corpus_sha256(),
        threshold=CLASSIFY_MIN_CONFIDENCE,
        classifiers=figures,
        extraction=extraction,
        model_calls=_calls_by_task(context.calls) if context else {},
    )


def _calls_by_task(calls: list[ModelCall]) -> dict[str, dict[str, int]]:
    by_task: dict[str, Counter[str]] = {}
    for record in calls:
        by_task.setdefault(record.task, Counter())[record.outcome] += 1
    return {task: dict(counts) for task, counts in by_task.items()}


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_evaluation(result: DocumentsEvaluation) -> str:
    """The evaluation as plain-text tables (what ``carebound eval documents`` prints)."""
    names = [c.name for c in result.classifiers]
    width = max(12, *(len(n) + 2 for n in names), 0)
    out = [
        f"{result.split} split: {result.documents} documents "
        f"(corpus sha256 {result.corpus_sha256[:12]})",
        f"accepted: a known type at confidence >= {result.threshold}, no instructions found",
        "",
        f"{'classifier':<{width}}accuracy  accepted  precision  ECE     injected held  "
        "flagged  clean flagged  failures",
    ]
    for c in result.classifiers:
        inj = c.injection
        out.append(
            f"{c.name:<{width}}{_num(c.accuracy):<10}{c.accepted:<10}"
            f"{_num(c.accepted_precision):<11}{_num(c.ece):<8}"
            f"{f'{inj.held}/{inj.injected}':<15}{inj.flagged:<9}{inj.clean_flagged:<15}{c.failures}"
        )
    out += [
        "",
        "precision / recall by class (support)",
        f"{'class':<16}" + "".join(f"{n:<{width + 2}}" for n in names),
    ]
    for i, code in enumerate(CLASSES if result.classifiers else ()):
        support = result.classifiers[0].per_class[i].support
        pairs = (c.per_class[i] for c in result.classifiers)
        cells = "".join(
            f"{_num(p.precision, 2) + ' / ' + _num(p.recall, 2):<{width + 2}}" for p in pairs
        )
        out.append(f"{f'{code} ({support})':<16}{cells}")
    out += [
        "",
        "calibration of claims (a known type named): claims, mean confidence -> accuracy",
        f"{'confidence':<16}" + "".join(f"{n:<{width + 10}}" for n in names),
    ]
    buckets = result.classifiers[0].calibration if result.classifiers else []
    for i, bucket in enumerate(buckets):
        shown = (
            f"{b.claims:>3}  {_num(b.mean_confidence, 2)} -> {_num(b.accuracy, 2)}"
            for b in (c.calibration[i] for c in result.classifiers)
        )
        cells = "".join(f"{cell:<{width + 10}}" for cell in shown)
        out.append(f"{f'{bucket.low:.1f}-{bucket.high:.1f}':<16}{cells}")
    for e in result.extraction:
        out += [
            "",
            f"extraction by {e.name}: {e.faxes} referral faxes, field accuracy "
            f"{_num(e.accuracy)}, wrong values {e.wrong}, failures {e.failures}",
        ]
        out += [
            f"  {f.field:<30}{f.right:>3}/{f.total:<4}{_num(f.accuracy)}  wrong {f.wrong}"
            for f in e.fields
        ]
    if result.model_calls:
        calls = "; ".join(
            f"{task} " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            for task, counts in result.model_calls.items()
        )
        out += ["", f"chat model calls: {calls}"]
    if not result.extraction:
        out += [
            "",
            "extraction: no extractor given (the rules extract nothing from a referral fax)",
        ]
    return "\n".join(line.rstrip() for line in out)
