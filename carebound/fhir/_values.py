"""Small readers for FHIR datatypes: dates of any precision, and a CodeableConcept's label."""

from __future__ import annotations

import re
from datetime import date, datetime

from fhir.resources.R4B.codeableconcept import CodeableConcept

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def fhir_date(value: date | datetime | str | None, *, partial: bool = True) -> date | None:
    """The calendar date of a FHIR date, dateTime or instant.

    fhir.resources returns full values as ``date``/``datetime`` and keeps partial ones
    (``2026``, ``2026-01``) as strings. A datetime gives its date as written, in its own
    timezone. With ``partial=True`` a partial value maps to its first day (``2026-01`` ->
    2026-01-01), the earliest date it can mean; with ``partial=False`` it gives None.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = _PARTIAL_DATE.match(value)
    if match is None:
        return None
    year, month, day = match.groups()
    if day is None and not partial:
        return None
    try:
        return date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None


def concept_label(concept: CodeableConcept | None) -> str | None:
    """A CodeableConcept in words: its first coding's display, else its text, else that code."""
    if concept is None:
        return None
    codings = concept.coding or []
    for coding in codings:
        if coding.display:
            return coding.display
    if concept.text:
        return concept.text
    for coding in codings:
        if coding.code:
            return coding.code
    return None
