"""carebound.agents.documents: what a referral is missing, and what an untyped fax is.

Pure, deterministic logic for the document-chasing agent (no Redis, no graph):

- ``DocumentRequirement`` (policy pack schema) and ``DEFAULT_REQUIREMENTS``;
- ``missing_documents(case, requirements, classified=...)`` -> ``MissingItem`` list;
- ``classify(text)`` -> ``Classification`` of a document's text into a LOINC document type,
  rule-based, with a confidence that counts only at or above ``CLASSIFY_MIN_CONFIDENCE``.
"""

from ._classify import (
    CLASSIFY_MIN_CONFIDENCE,
    DOCUMENT_TYPES,
    INJECTION_CONFIDENCE_CAP,
    UNKNOWN,
    Classification,
    classify,
)
from ._missing import MissingItem, missing_documents
from ._requirements import DEFAULT_REQUIREMENTS, DocumentRequirement

__all__ = [
    "CLASSIFY_MIN_CONFIDENCE",
    "DEFAULT_REQUIREMENTS",
    "DOCUMENT_TYPES",
    "INJECTION_CONFIDENCE_CAP",
    "UNKNOWN",
    "Classification",
    "DocumentRequirement",
    "MissingItem",
    "classify",
    "missing_documents",
]
