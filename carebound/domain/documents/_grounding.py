"""Whether a value a model extracted from a document is actually written in it.

A model asked to read a fax can invent: a birth date, a record number, a phone number the text
never gives. ``is_written_in`` accepts a value only when the text carries it: words in order
(case, accents, punctuation and spacing aside), digits in order (``555-010-2000`` and
``(555) 010 2000`` are the same number), and an ISO date (``1961-07-04``) in any of the usual
ways of writing it (``07/04/1961``, ``7/4/1961``, ``4 Jul 1961``, ``July 4, 1961`` ...).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", folded).split())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _date_forms(day: date) -> list[str]:
    month = _MONTHS[day.month - 1]
    forms = [
        f"{day:%Y-%m-%d}", f"{day:%m/%d/%Y}", f"{day.month}/{day.day}/{day.year}",
        f"{day:%d/%m/%Y}", f"{day.day}/{day.month}/{day.year}", f"{day:%m-%d-%Y}",
        f"{day:%d.%m.%Y}", f"{day.day} {month} {day.year}", f"{month} {day.day} {day.year}",
        f"{day.day} {month[:3]} {day.year}", f"{month[:3]} {day.day} {day.year}",
    ]  # fmt: skip
    return [_plain(f) for f in forms]


def is_written_in(text: str, value: str) -> bool:
    """Whether ``value`` (a name, phrase, identifier, phone number or ISO date) is written in
    ``text``. An empty value is never written."""
    plain_value = _plain(value)
    if not plain_value:
        return False
    plain_text = f" {_plain(text)} "
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        day = None
    if day is not None:
        return any(f" {form} " in plain_text for form in _date_forms(day))
    if f" {plain_value} " in plain_text:
        return True
    digits = _digits(value)
    if len(digits) >= 5 and len(digits) >= len(re.sub(r"\s", "", value)) // 2:
        return digits in _digits(text)  # a number written with other separators
    return False
