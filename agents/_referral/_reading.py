"""Task 1 of the referral agents' AI assist: a chat model reads an untyped (faxed) document.

The model gets the document's text only (minimum necessary, as delimited DATA), and answers
with a :class:`DocumentReading`: the LOINC document type from the list the rules know, its
confidence, and the date, patient and sender it read. The rule classifier cross-checks it: the
reading rides along with the ``file_document`` proposal as its ``second_opinion``, and the
tool's facts hold the filing (DOC-1) unless both agree with confidence; the packet shows both.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import AgentContext
from carebound.assist import Path, PromptTemplate, call
from carebound.domain.documents import (
    CLASSIFY_MIN_CONFIDENCE,
    DOCUMENT_TYPES,
    UNKNOWN,
    Classification,
)
from carebound.tools.referral import SecondOpinion

KNOWN_CODES = frozenset(t.code for t in DOCUMENT_TYPES)


class DocumentReading(BaseModel):
    """What a faxed document is, as read by a chat model (its structured output)."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(description="LOINC code of the document type, from the list, or 'unknown'.")
    confidence: float = Field(ge=0.0, le=1.0, description="How sure you are, 0 to 1.")
    document_date: str | None = Field(
        default=None, description="When the document was written (YYYY-MM-DD), if it says."
    )
    patient_name: str | None = Field(default=None, description="The patient's name, if given.")
    patient_birth_date: str | None = Field(
        default=None, description="The patient's birth date (YYYY-MM-DD), if given."
    )
    patient_identifiers: list[str] = Field(
        default_factory=list, description="Record numbers (MRN) of the patient, if given."
    )
    sender: str | None = Field(
        default=None, description="The practice or clinician who wrote or sent it, if given."
    )


_TYPES = "\n".join(f"- {t.code}: {t.display}" for t in DOCUMENT_TYPES)

CLASSIFY_TEMPLATE = PromptTemplate(
    id="classify-document/v1",
    task="classify",
    instructions=(
        "You sort faxed clinical documents for a referral intake team. Read the document in "
        "the DATA block and say which of these LOINC document types it is:\n"
        f"{_TYPES}\n- unknown: none of them, or you cannot tell.\n"
        "Give your confidence from 0 to 1, and copy the document's date, the patient's name, "
        "birth date and record numbers, and the sender exactly as written; leave out anything "
        "the document does not say. Never guess a value that is not in the text."
    ),
)
"""The classification prompt (its id and hash are in every call's audit event)."""


def proposed_code(rules: Classification, model_code: str | None) -> str | None:
    """The type to propose filing under: the rules' when they are confident, else a known type
    the model read, else the rules' best guess (None: nothing known). The tool's facts decide
    whether it is filed at once or held."""
    rules_code = None if rules.code == UNKNOWN else rules.code
    if rules.confidence >= CLASSIFY_MIN_CONFIDENCE or model_code is None:
        return rules_code
    return model_code if model_code in KNOWN_CODES else rules_code


def _path(rules: Classification, reading: DocumentReading) -> Path:
    if reading.code == rules.code:
        return "both"
    return "model" if proposed_code(rules, reading.code) == reading.code else "rules"


def _shown(*parts: str | None) -> str | None:
    kept = [p.strip() for p in parts if p and p.strip()]
    return "; ".join(kept)[:200] if kept else None


def second_opinion(ctx: AgentContext, text: str, rules: Classification) -> SecondOpinion | None:
    """The task's model's reading of ``text`` (audited through ``carebound.assist.call``), or
    None when no model classifies, or its answer was refused, late or failed: the rules then
    decide alone, as without a model."""
    got = call(
        ctx,
        CLASSIFY_TEMPLATE,
        {"document_text": text},
        DocumentReading,
        judge=lambda reading: _path(rules, reading),
    )
    reading = got.output
    if reading is None or got.record is None:
        return None
    patient = _shown(
        reading.patient_name,
        f"born {reading.patient_birth_date}" if reading.patient_birth_date else None,
        *reading.patient_identifiers,
    )
    return SecondOpinion(
        code=reading.code[:20] or UNKNOWN,
        confidence=reading.confidence,
        model=got.record.model_version or got.record.model,
        document_date=(reading.document_date or "")[:40] or None,
        sender=_shown(reading.sender),
        patient=patient,
    )
