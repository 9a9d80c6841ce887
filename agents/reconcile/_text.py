"""Small text helpers shared by the field comparators."""

from __future__ import annotations

import re

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
