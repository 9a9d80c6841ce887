"""A configured chat model in the evaluation: the referral agents' own prompts, as they use them.

``chat_classifiers(models)`` gives two classifiers built on the referral agents' task 1
(``CLASSIFY_TEMPLATE`` and ``DocumentReading``, asked through ``carebound.assist.call``: the
same minimum-necessary data, delimited DATA, structured output, time-out and fallbacks):

- ``chat``: the model's reading alone (what it would say with nobody checking it);
- ``chat+rules``: what the agents do with it: the type proposed by ``proposed_code``, counted
  without a person only when the rules and the model agree at or above the threshold and no
  instructions were found in the text (DOC-1 and DOC-2 hold the rest).

``chat_extractors(models)`` gives two extractors built on task 2 (``EXTRACT_TEMPLATE`` and
``ReferralExtraction``): ``chat``, what the model read, and ``chat+grounding``, what the agents
keep of it (values not written in the fax are dropped before a coordinator sees the draft).

A call that is refused, late or failed raises ``NoModelAnswerError``: the evaluation counts it
as a failure of ``chat``; ``chat+rules`` falls back to the rules, as the agents do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from carebound.domain.documents import (
    CLASSIFY_MIN_CONFIDENCE,
    DOCUMENT_TYPES,
    UNKNOWN,
    Classification,
    classify,
)

from ._documents import Decided, accepted

if TYPE_CHECKING:
    from carebound.assist import ModelCall, ModelConfig

T = TypeVar("T")

_DISPLAY = {t.code: t.display for t in DOCUMENT_TYPES} | {UNKNOWN: "Unknown document type"}


class NoModelAnswerError(RuntimeError):
    """The model gave no usable answer (refused, timed out or failed): its outcome says which."""


class EvalContext:
    """What ``carebound.assist.call`` needs: the models, and a place for the call records."""

    def __init__(self, models: ModelConfig) -> None:
        self._models = models
        self.calls: list[ModelCall] = []
        """Every call's audit record, in order (counted in the evaluation, never printed)."""

    @property
    def models(self) -> ModelConfig:
        """The models per task."""
        return self._models

    @property
    def record_model_call(self) -> Callable[[ModelCall], None]:
        """Keeps a call's record."""
        return self.calls.append


def _once_per_text(ask: Callable[[str], T | str]) -> Callable[[str], T]:
    """``ask`` called once per text (both rows of a task share one model call); a ``str``
    answer is the outcome of a call that gave nothing usable, raised as ``NoModelAnswerError``."""
    answers: dict[str, T | str] = {}

    def answer(text: str) -> T:
        if text not in answers:
            answers[text] = ask(text)
        got = answers[text]
        if isinstance(got, str):
            raise NoModelAnswerError(got)
        return got

    return answer


def chat_classifiers(
    ctx: EvalContext,
) -> dict[str, Callable[[str], Classification | Decided]]:
    """The model's own reading (``chat``) and the agents' combined decision (``chat+rules``)."""
    from carebound.agents._referral._reading import (
        CLASSIFY_TEMPLATE,
        DocumentReading,
        proposed_code,
    )
    from carebound.assist import call

    @_once_per_text
    def reading(text: str) -> Classification | str:
        got = call(ctx, CLASSIFY_TEMPLATE, {"document_text": text}, DocumentReading)
        if got.output is None:
            return got.record.outcome if got.record else "no model"
        code = got.output.code if got.output.code in _DISPLAY else UNKNOWN
        return Classification(code=code, display=_DISPLAY[code], confidence=got.output.confidence)

    def combined(text: str) -> Decided:
        rules = classify(text)
        try:
            model: Classification | None = reading(text)
        except NoModelAnswerError:
            model = None
        if model is None:  # the rules decide alone, as without a model
            return Decided(rules, accepted=accepted(rules))
        code = proposed_code(rules, model.code) or UNKNOWN
        agree = model.code == rules.code and model.confidence >= CLASSIFY_MIN_CONFIDENCE
        result = rules.model_copy(
            update={
                "code": code,
                "display": _DISPLAY.get(code, code),
                "confidence": min(rules.confidence, model.confidence)
                if agree
                else (rules.confidence if code == rules.code else model.confidence),
            }
        )
        return Decided(result, accepted=agree and accepted(rules))

    return {"chat": reading, "chat+rules": combined}


def chat_extractors(ctx: EvalContext) -> dict[str, Callable[[str], Mapping[str, str | None]]]:
    """The model's extraction of a faxed referral (``chat``), and what the agents keep of it
    (``chat+grounding``), as the corpus's extraction fields."""
    from carebound.agents._referral._extract import (
        EXTRACT_TEMPLATE,
        ReferralExtraction,
        _grounded,
    )
    from carebound.assist import call

    @_once_per_text
    def read(text: str) -> ReferralExtraction | str:
        got = call(ctx, EXTRACT_TEMPLATE, {"document_text": text}, ReferralExtraction)
        return got.output or (got.record.outcome if got.record else "no model")

    def extracted(text: str) -> Mapping[str, str | None]:
        return _fields(read(text).model_dump())

    def grounded(text: str) -> Mapping[str, str | None]:
        kept, _ = _grounded(text, read(text))
        return _fields(kept)

    return {"chat": extracted, "chat+grounding": grounded}


def _fields(values: Mapping[str, Any]) -> dict[str, str | None]:
    """A ``ReferralExtraction``'s values under the corpus's field names (the fields it has)."""
    given = values.get("patient_given_names") or []
    return {
        "patient.given": " ".join(given) or None,
        "patient.family": values.get("patient_family_name"),
        "patient.birth_date": values.get("patient_birth_date"),
        "patient.sex": values.get("patient_gender"),
        "patient.phone": values.get("patient_phone"),
        "patient.mrn": values.get("patient_record_number"),
        "service_request.specialty": values.get("service"),
        "service_request.reason": values.get("reason"),
        "service_request.priority": values.get("priority"),
        "service_request.requester": values.get("referring_clinician"),
    }
