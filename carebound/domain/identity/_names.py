"""Compare names: case and whitespace, accents, nicknames, one-character typos, lost hyphenated
surnames.

Low risk (DOMAIN.md): case/whitespace, accents only (``Perez``/``Pérez``: the accented spelling is
kept, systems drop diacritics far more often than they invent them), a nickname of the legal first
name, a one-character typo in a name of four or more letters. The same rules apply to every part
of the name. Everything else that differs is held for a person.
"""

from __future__ import annotations

import re
from typing import Literal

import jellyfish
from nameparser import HumanName
from rapidfuzz.distance import Levenshtein

from carebound.domain._text import accent_fold, accent_marks, collapse, fold, is_one_case

from ._models import Mismatch, MismatchKind, mismatch
from ._nicknames import KNOWN_GIVEN_NAMES, legal_form, legal_names_for

_TYPO_MIN_LENGTH = 4
_SURNAME_PARTS = re.compile(r"[\s\-]+")

_TokenClass = Literal["same", "accent", "nickname", "typo", "initial", "differs"]


def display_case(preferred: str, other: str) -> str:
    """The casing to write for ``preferred`` (the value chosen), given the ``other`` spelling.

    A mixed-case spelling carries information (``McDonald``) and wins: ``preferred``'s own, else
    ``other``'s when it is the same word. Two one-case spellings in the same case keep it
    (``MARGARITA`` over ``RITA``); upper against lower is capitalised by nameparser.
    """
    p, o = collapse(preferred), collapse(other)
    if not is_one_case(p):
        return p
    if not is_one_case(o):
        return o if p.casefold() == o.casefold() else _capitalise(p)
    if (p == p.upper()) == (o == o.upper()):
        return p
    return _capitalise(p)


def _capitalise(name: str) -> str:
    parsed = HumanName(name)
    parsed.capitalize(force=True)
    return str(parsed) or name


def _sounds(x: str, y: str) -> str:
    """Metaphone, as supporting evidence only: never decides a classification."""
    mx, my = jellyfish.metaphone(x), jellyfish.metaphone(y)
    if mx == my:
        return f"; both sound alike (metaphone {mx})"
    return ""


def accented(x: str, y: str) -> tuple[str, str]:
    """Of two spellings equal but for accents, (the legal accented one, the other); ``y`` (the
    reference) wins a tie."""
    if accent_marks(x) > accent_marks(y):
        return x, y
    return y, x


def _is_typo(x: str, y: str) -> bool:
    fx, fy = x.casefold(), y.casefold()
    if min(len(fx), len(fy)) < _TYPO_MIN_LENGTH:
        return False
    if Levenshtein.distance(fx, fy) != 1:
        return False
    # Two real names one letter apart (Frances/Francis) are two names, not a typo.
    return not (fx in KNOWN_GIVEN_NAMES and fy in KNOWN_GIVEN_NAMES)


def _is_initial(x: str, y: str) -> bool:
    """``x`` is a bare initial (``M`` or ``M.``) of ``y`` or of a legal name ``y`` stands for."""
    letter = x.rstrip(".")
    if len(letter) != 1 or len(y) < 2:
        return False
    return any(name[:1] == letter.casefold() for name in legal_names_for(y))


def _classify_token(x: str, y: str) -> _TokenClass:
    if x.casefold() == y.casefold():
        return "same"
    if accent_fold(x) == accent_fold(y):
        return "accent"
    if legal_form(x, y) is not None:
        return "nickname"
    if _is_initial(x, y) or _is_initial(y, x):
        return "initial"
    if _is_typo(x, y):
        return "typo"
    return "differs"


def compare_given(a: list[str], b: list[str], labels: tuple[str, str]) -> Mismatch | None:
    """Compare given-name lists token by token; ``b`` is the reference record."""
    field_a, field_b = " ".join(a), " ".join(b)
    tokens_a, tokens_b = field_a.split(), field_b.split()
    if not tokens_a or not tokens_b or field_a == field_b:
        return None
    values: dict[str, str | None] = {labels[0]: field_a, labels[1]: field_b}
    if len(tokens_a) != len(tokens_b):
        return mismatch(
            "name.given",
            "name_differs",
            values,
            f"'{field_a}' and '{field_b}' have a different number of given names; "
            "a missing or extra name is not on the low-risk list",
        )
    classes = [_classify_token(x, y) for x, y in zip(tokens_a, tokens_b, strict=True)]
    pairs = list(zip(tokens_a, tokens_b, classes, strict=True))
    for x, y, cls in pairs:
        if cls == "differs":
            return mismatch(
                "name.given",
                "name_differs",
                values,
                f"'{x}' and '{y}' are different given names (not a known nickname, "
                "not a one-character typo)",
            )
    for x, y, cls in pairs:
        if cls == "initial":
            return mismatch(
                "name.given",
                "name_initial",
                values,
                f"'{x}' and '{y}': an initial may fit this name but cannot confirm it; "
                "initials are not on the low-risk list",
            )
    proposed_tokens: list[str] = []
    notes: list[tuple[MismatchKind, str]] = []
    for x, y, cls in pairs:
        legal = legal_form(x, y)
        if cls == "nickname" and legal is not None:
            nick = y if legal is x else x
            proposed_tokens.append(display_case(legal, nick))
            notes.append(("nickname", f"'{nick}' is a nickname of the legal name '{legal}'"))
        elif cls == "accent":
            legal, other = accented(x, y)
            proposed_tokens.append(display_case(legal, other))
            notes.append(
                ("accent", "a given name differs only in accents: the accented form is kept")
            )
        elif cls == "typo":
            proposed_tokens.append(display_case(y, x))
            notes.append(
                (
                    "name_typo",
                    f"'{x}' and '{y}' differ by one character (Levenshtein distance 1)"
                    + _sounds(x, y),
                )
            )
        else:
            proposed_tokens.append(y if x == y else display_case(y, x))
    proposed = " ".join(proposed_tokens)
    if notes:
        # Several low-risk fixes in one name: the nickname, if any, names the mismatch.
        kinds = {kind for kind, _ in notes}
        order: tuple[MismatchKind, ...] = ("nickname", "name_typo", "accent")
        lead = next(k for k in order if k in kinds)
        return mismatch(
            "name.given",
            lead,
            values,
            "; ".join(text for _, text in notes) + f": write '{proposed}'",
            proposed,
        )
    return mismatch(
        "name.given",
        "case_whitespace",
        values,
        f"'{field_a}' and '{field_b}' differ only in case or spacing: write '{proposed}'",
        proposed,
    )


def compare_family(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """Compare family names; ``b`` is the reference record."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    if fold(a) == fold(b):
        proposed = collapse(b) if collapse(a) == collapse(b) else display_case(b, a)
        return mismatch(
            "name.family",
            "case_whitespace",
            values,
            f"'{a}' and '{b}' differ only in case or spacing: write '{proposed}'",
            proposed,
        )
    if accent_fold(a) == accent_fold(b):
        legal, other = accented(a, b)
        proposed = display_case(legal, other)
        return mismatch(
            "name.family",
            "accent",
            values,
            "the family names differ only in accents (and case or spacing): the accented form is "
            "kept",
            proposed,
        )
    parts_a = [accent_fold(p) for p in _SURNAME_PARTS.split(a.strip()) if p]
    parts_b = [accent_fold(p) for p in _SURNAME_PARTS.split(b.strip()) if p]
    if parts_a == parts_b:
        return mismatch(
            "name.family",
            "hyphenated_surname_lost",
            values,
            f"'{a}' and '{b}' join the parts of a compound surname differently; "
            "which form is legal needs a person",
        )
    shorter, longer = sorted((parts_a, parts_b), key=len)
    if len(longer) > 1 and set(shorter) < set(longer):
        compound = a if parts_a is longer else b
        partial = b if compound is a else a
        return mismatch(
            "name.family",
            "hyphenated_surname_lost",
            values,
            f"'{partial}' keeps only part of the compound surname '{compound}'; "
            "a lost hyphenated surname is held for a person",
        )
    if _is_typo(a.strip(), b.strip()):
        proposed = display_case(b, a)
        return mismatch(
            "name.family",
            "name_typo",
            values,
            f"'{a}' and '{b}' differ by one character (Levenshtein distance 1)"
            + _sounds(a, b)
            + f": write '{proposed}'",
            proposed,
        )
    return mismatch(
        "name.family",
        "name_differs",
        values,
        f"'{a}' and '{b}' are different family names",
    )
