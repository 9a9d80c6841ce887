"""The labelled corpus of synthetic faxed documents that ships with carebound.

``carebound/eval/corpus/documents.jsonl`` is written by ``scripts/make_document_corpus.py``
(seeded; a test checks the file equals its output). Each line is one ``CorpusDocument``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

Split = Literal["train", "heldout"]
CORPUS_FILE = "documents.jsonl"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class PatientLabel(_Frozen):
    """Who a document is about, as written on it."""

    name: str
    """Given and family name."""
    birth_date: str
    """ISO date."""
    mrn: str
    """The sender's medical record number."""


class DocumentLabel(_Frozen):
    """What a document is: the truth a classifier is measured against."""

    type: str
    """LOINC document code of the fax's first document, or ``unknown``."""
    types: list[str]
    """Every document in the fax, in order (two for a multi-document fax)."""
    kind: str
    """The type again, or for ``unknown`` which clerical paper it is (statement, advert...)."""
    date: str
    """The document's date (ISO)."""
    patient: PatientLabel | None
    """None for a paper about no patient (an advert)."""
    sender: str
    """The sending organisation."""


class DocumentTraits(_Frozen):
    """How the document was made: what makes it hard."""

    language: str
    """ISO 639-1: en, es or fr."""
    layout: str
    """``sections``, ``form`` or ``narrative``."""
    ocr_noise: int
    """0 (clean), 1 or 2: look-alike swaps, dropped letters, lines broken mid-word."""
    cover_sheet: bool
    multi_document: bool
    injected: bool
    """Carries instructions aimed at software (it must be held, never accepted)."""


class ExtractionLabel(_Frozen):
    """What a referral fax says: the fields a ServiceRequest, Patient and Coverage draft hold."""

    patient: dict[str, str]
    """given, family, birth_date, sex, phone, mrn."""
    service_request: dict[str, str]
    """specialty, reason, diagnosis_code (ICD-10), priority, authored_on, requester (the
    referring clinician's name), requester_npi."""
    coverage: dict[str, str]
    """payer, member_id."""

    def fields(self) -> dict[str, str]:
        """Every field as ``group.name`` -> expected value."""
        groups = {"patient": self.patient, "service_request": self.service_request,
                  "coverage": self.coverage}  # fmt: skip
        return {f"{g}.{k}": v for g, values in groups.items() for k, v in values.items()}


class CorpusDocument(_Frozen):
    """One labelled faxed document of the corpus."""

    id: str
    split: Split
    """``train`` (the local model learns from it) or ``heldout`` (only measured on)."""
    label: DocumentLabel
    traits: DocumentTraits
    text: str
    """The fax's text as OCR gave it."""
    extraction: ExtractionLabel | None = None
    """For a referral fax with known extractions."""


def corpus_bytes() -> bytes:
    """The shipped corpus file, as stored."""
    return resources.files(__package__).joinpath("corpus", CORPUS_FILE).read_bytes()


def corpus_sha256() -> str:
    """Hex digest of the shipped corpus file."""
    return hashlib.sha256(corpus_bytes()).hexdigest()


@lru_cache(maxsize=1)
def _all() -> tuple[CorpusDocument, ...]:
    lines = corpus_bytes().decode("utf-8").splitlines()
    return tuple(CorpusDocument.model_validate_json(line) for line in lines if line.strip())


def load_corpus(split: Split | None = None) -> list[CorpusDocument]:
    """The corpus's documents, in order; only one split's when ``split`` is given."""
    return [d for d in _all() if split is None or d.split == split]


__all__ = [
    "CorpusDocument",
    "DocumentLabel",
    "DocumentTraits",
    "ExtractionLabel",
    "PatientLabel",
    "Split",
    "corpus_sha256",
    "load_corpus",
]
