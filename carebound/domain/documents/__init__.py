"""carebound.domain.documents: what a referral is missing, and what an untyped fax is.

Pure, deterministic rules for the document-chasing agents (no I/O: no Redis, graph, connectors):

- ``DocumentRequirement`` (policy pack schema) and ``DEFAULT_REQUIREMENTS``;
- ``missing_documents(case, requirements, classified=...)`` -> ``MissingItem`` list;
- ``classify(text)`` -> ``Classification`` of a document's text into a LOINC document type,
  rule-based, with a confidence that counts only at or above ``CLASSIFY_MIN_CONFIDENCE``;
- ``classify_local(text)`` -> the same ``Classification`` from a small local model (hashed
  word and character features, logistic regression; weights shipped in the package, trained on
  the train split of ``carebound.eval``'s corpus): the middle option between rules and a chat model;
- ``detect_injection(text)`` -> ``InjectionReport``: instructions aimed at software or staff
  (DOC-2), found after undoing disguises, with the passages and an explanation;
- ``is_written_in(text, value)``: whether a value a model extracted is written in the text.
"""

from ._classify import (
    CLASSIFY_MIN_CONFIDENCE,
    DOCUMENT_TYPES,
    INJECTION_CONFIDENCE_CAP,
    UNKNOWN,
    Classification,
    classify,
    with_injection,
)
from ._document_text import attachment_text, document_texts
from ._grounding import is_written_in
from ._injection import (
    FLAG_AT,
    InjectionFinding,
    InjectionReport,
    detect_injection,
)
from ._local_model import classify_local
from ._missing import MissingItem, missing_documents
from ._requirements import DEFAULT_REQUIREMENTS, DocumentRequirement

__all__ = [
    "CLASSIFY_MIN_CONFIDENCE",
    "DEFAULT_REQUIREMENTS",
    "DOCUMENT_TYPES",
    "FLAG_AT",
    "INJECTION_CONFIDENCE_CAP",
    "UNKNOWN",
    "Classification",
    "DocumentRequirement",
    "InjectionFinding",
    "InjectionReport",
    "MissingItem",
    "attachment_text",
    "classify",
    "classify_local",
    "detect_injection",
    "document_texts",
    "is_written_in",
    "missing_documents",
    "with_injection",
]
