"""Every piece of text a DocumentReference (FHIR JSON) carries, for the injection scan.

The classifier reads the first inline ``text/plain`` attachment; instructions can hide anywhere
else a person or a program might read: the description, attachment titles, and any other inline
textual attachment (HTML, markdown, JSON, XML, CSV), whatever its declared charset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

_TEXTUAL = ("text/", "application/json", "application/xml", "application/fhir", "application/xhtml")
#: Bytes of one attachment that are read (a larger attachment is read up to this).
MAX_ATTACHMENT_BYTES = 1_000_000


def _decoded(data: str) -> str | None:
    try:
        raw = base64.b64decode(data[: MAX_ATTACHMENT_BYTES * 4 // 3 + 4], validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw[:MAX_ATTACHMENT_BYTES].decode("utf-8", errors="replace")


def attachment_text(resource: Mapping[str, Any]) -> str | None:
    """The first inline textual attachment, decoded (what a reviewer reads); None if none."""
    for content in resource.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, Mapping) else None
        if not isinstance(attachment, Mapping):
            continue
        media = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
        data = attachment.get("data")
        if isinstance(data, str) and media.startswith(_TEXTUAL):
            return _decoded(data)
    return None


def document_texts(resource: Mapping[str, Any]) -> list[str]:
    """The description, attachment titles and every inline textual attachment, decoded."""
    texts: list[str] = []
    description = resource.get("description")
    if isinstance(description, str) and description.strip():
        texts.append(description)
    for content in resource.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, Mapping) else None
        if not isinstance(attachment, Mapping):
            continue
        title = attachment.get("title")
        if isinstance(title, str) and title.strip():
            texts.append(title)
        media = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
        data = attachment.get("data")
        if isinstance(data, str) and (not media or media.startswith(_TEXTUAL)):
            text = _decoded(data)
            if text:
                texts.append(text)
    return texts


__all__ = ["MAX_ATTACHMENT_BYTES", "attachment_text", "document_texts"]
