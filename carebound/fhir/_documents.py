"""Reading a DocumentReference: its LOINC type, its date, and its inline text."""

from __future__ import annotations

import codecs
from datetime import date

from fhir.resources.R4B.documentreference import DocumentReference

from carebound.fhir._values import fhir_date

LOINC = "http://loinc.org"


def document_loinc_codes(doc: DocumentReference) -> tuple[str, ...]:
    """The LOINC codes of ``DocumentReference.type`` (empty for an untyped document)."""
    if doc.type is None:
        return ()
    return tuple(c.code for c in doc.type.coding or [] if c.system == LOINC and c.code)


def document_date(doc: DocumentReference) -> date | None:
    """When the document's content was produced, as a date.

    ``DocumentReference.date`` if present, else the end (or, open-ended, the start) of
    ``context.period``; a partial period date counts as its first day. None when undated.
    """
    if doc.date is not None:
        return fhir_date(doc.date)
    period = doc.context.period if doc.context is not None else None
    if period is None:
        return None
    return fhir_date(period.end) or fhir_date(period.start)


def document_text(doc: DocumentReference) -> str | None:
    """The text of the first inline ``text/plain`` attachment, decoded.

    fhir.resources has already base64-decoded ``attachment.data``; this decodes the bytes with
    the media type's ``charset`` (UTF-8 when absent or unknown; undecodable bytes become U+FFFD).
    None when no content is inline ``text/plain``: url-only attachments, PDFs, images, or
    attachments without a contentType.
    """
    for content in doc.content or []:
        attachment = content.attachment
        if attachment.data is None or attachment.contentType is None:
            continue
        media_type, _, params = attachment.contentType.partition(";")
        if media_type.strip().lower() != "text/plain":
            continue
        return attachment.data.decode(_charset(params), errors="replace")
    return None


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                return codecs.lookup(name).name
            except LookupError:
                break
    return "utf-8"
