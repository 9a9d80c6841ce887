"""Small text helpers shared by the field comparators."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


def collapse(text: str) -> str:
    """Trim and collapse runs of whitespace to one space."""
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Case- and whitespace-insensitive form of ``text``."""
    return collapse(text).casefold()


def alnum_upper(text: str) -> str:
    """Only the ASCII letters and digits of ``text``, upper-cased."""
    return _NON_ALNUM.sub("", text).upper()


def is_one_case(text: str) -> bool:
    """True when ``text`` is all upper or all lower case (so its casing carries no information)."""
    return text in (text.upper(), text.lower())


def strip_accents(text: str) -> str:
    """``text`` without diacritics (NFKD, combining marks dropped): ``Pérez`` -> ``Perez``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def accent_fold(text: str) -> str:
    """Case-, whitespace- and accent-insensitive form of ``text``."""
    return fold(strip_accents(text))


def accent_marks(text: str) -> int:
    """How many diacritics ``text`` carries (the accented spelling is the legal one)."""
    return sum(1 for c in unicodedata.normalize("NFKD", text) if unicodedata.combining(c))
