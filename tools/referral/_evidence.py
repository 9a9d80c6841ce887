"""Documents as evidence: received documents dated by when they were written, classified from
their text (with DOC-2's injection check), and whether a classification supports a filing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.documentreference import DocumentReference

from carebound.domain.documents import (
    CLASSIFY_MIN_CONFIDENCE,
    UNKNOWN,
    Classification,
    classify,
    detect_injection,
    document_texts,
    with_injection,
)
from carebound.fhir import (
    document_text,
    parse_resource,
)
from carebound.tools.connectors._outreach import INBOUND_ID_SYSTEM

# --- documents -------------------------------------------------------------------------------


def evidence_view(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A DocumentReference as evidence: for a document received by outreach, its content date
    is ``attachment.creation`` (when it was written), not ``DocumentReference.date`` (when it
    came in); a received document without one is undated."""
    doc = json.loads(json.dumps(resource))
    received = any(
        isinstance(i, Mapping) and i.get("system") == INBOUND_ID_SYSTEM
        for i in doc.get("identifier", [])
    )
    if not received:
        return dict(doc)
    doc.pop("date", None)
    context = doc.get("context")
    if isinstance(context, dict):
        context.pop("period", None)
    for content in doc.get("content", []):
        created = (content.get("attachment") or {}).get("creation")
        if isinstance(created, str):
            context = doc.setdefault("context", {})
            context["period"] = {"start": created, "end": created}
            break
    return dict(doc)


def parse_document(resource: Mapping[str, Any], *, source: str) -> DocumentReference:
    """Validate one DocumentReference (as evidence, see :func:`evidence_view`).

    Raises:
        FhirInputError: it is not a valid R4B DocumentReference.
    """
    return parse_resource(evidence_view(resource), DocumentReference, source=source)


def typed_codes(resource: Mapping[str, Any]) -> list[str]:
    """The LOINC codes of a DocumentReference's type (JSON)."""
    coding = (resource.get("type") or {}).get("coding") or []
    return [
        str(c["code"])
        for c in coding
        if isinstance(c, Mapping) and c.get("system") == "http://loinc.org" and c.get("code")
    ]


def readable_text(resource: Mapping[str, Any], *, source: str) -> str | None:
    """The inline text a DocumentReference (JSON) carries (None: none readable).

    Raises:
        FhirInputError: it is not a valid R4B DocumentReference.
    """
    return document_text(parse_resource(dict(resource), DocumentReference, source=source))


def classify_resource(resource: Mapping[str, Any], *, source: str) -> Classification:
    """Classify an untyped DocumentReference (JSON) from its inline text."""
    text = readable_text(resource, source=source)
    if text is None:
        result = Classification(code=UNKNOWN, display="No readable text", confidence=0.0)
    else:
        result = classify(text)
    # DOC-2: instructions hidden anywhere in the document (description, titles, other textual
    # attachments) count, not only in the text the classifier reads.
    return with_injection(result, detect_injection("\n".join(document_texts(resource))))


def is_confident(result: Classification, code: str | None) -> bool:
    """A classification supports filing as ``code``: same code, at or above the threshold, and
    no instructions to software in the text."""
    return (
        code is not None
        and result.code == code
        and result.confidence >= CLASSIFY_MIN_CONFIDENCE
        and not result.injection_suspected
    )
