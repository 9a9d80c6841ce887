"""Compare postal addresses by their USPS Publication 28 form (via usaddress-scourgify).

Low risk: case/whitespace, Pub 28 abbreviations (``Lane`` -> ``LN``), secondary unit designators
that name one dwelling unit (Pub 28 Appendix C2: ``Apt 4B``, ``# 4B``, ``Unit 4B``, ``Ste 4B``),
ZIP+4 against its own ZIP5, and a spelling variant of one address (same house number, street
and ZIP; a dropped street suffix, punctuation, or a city spelled so it sounds the same).
Anything else is held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
from scourgify import normalize_address_record  # type: ignore[import-untyped]
from scourgify.address_constants import (  # type: ignore[import-untyped]
    DIRECTIONAL_REPLACEMENTS,
    OCCUPANCY_TYPE_ABBREVIATIONS,
    STATE_ABBREVIATIONS,
    STREET_TYPE_ABBREVIATIONS,
)
from scourgify.exceptions import AddressNormalizationError  # type: ignore[import-untyped]

from carebound.domain._text import collapse, fold

from ._models import Mismatch, PersonRecord, mismatch

_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")
_WORD = re.compile(r"[A-Za-z]+\.?")
_COMMA = re.compile(r",")

_ABBREVIATIONS: dict[str, str] = {
    **{str(k): str(v) for k, v in STREET_TYPE_ABBREVIATIONS.items()},
    **{str(k): str(v) for k, v in DIRECTIONAL_REPLACEMENTS.items()},
    **{str(k): str(v) for k, v in OCCUPANCY_TYPE_ABBREVIATIONS.items()},
    **{str(k): str(v) for k, v in STATE_ABBREVIATIONS.items()},
}
_STREET_SUFFIXES = frozenset(str(v) for v in STREET_TYPE_ABBREVIATIONS.values())
# Pub 28 C2 designators that all name one dwelling unit ("#" stands for any designator, NO is a
# number sign spelled out). BLDG, FL, DEPT, LOT, TRLR... name something else: never equated.
_DWELLING_UNIT = frozenset({"APT", "UNIT", "STE", "RM", "#", "NO"})


def unit_key(line2: str | None) -> str | None:
    """The dwelling unit a Pub 28 secondary line names, its designator dropped when it is one of
    the interchangeable ones (``APT # 4B``, ``UNIT 4-B`` -> ``#4B``); other lines as they are."""
    if line2 is None:
        return None
    tokens = line2.split()
    stripped = 0
    while stripped < len(tokens) - 1 and tokens[stripped] in _DWELLING_UNIT:
        stripped += 1
    if stripped == 0:
        return line2
    return "#" + "".join(tokens[stripped:]).replace("-", "")


@dataclass(frozen=True)
class Pub28:
    """An address in USPS Pub 28 form (upper case, standard abbreviations, no punctuation)."""

    line1: str
    line2: str | None
    city: str | None
    state: str | None

    def render(self) -> str:
        """``LINE1[, LINE2], CITY, ST``: the form written by a low-risk fix."""
        return ", ".join(p for p in (self.line1, self.line2, self.city, self.state) if p)


@dataclass(frozen=True)
class Zip:
    """A US ZIP code split into its five-digit code and optional +4."""

    zip5: str
    plus4: str | None

    def render(self) -> str:
        """``NNNNN`` or ``NNNNN-NNNN``."""
        return f"{self.zip5}-{self.plus4}" if self.plus4 else self.zip5


def parse_zip(text: str | None) -> Zip | None:
    """Parse ``12345``, ``12345-6789`` or ``123456789``; None for anything else."""
    if text is None:
        return None
    found = _ZIP.match(collapse(text))
    return Zip(found.group(1), found.group(2)) if found else None


def _fallback(value: str | None) -> str | None:
    if not value:
        return None
    return collapse(_COMMA.sub(" ", value.replace(".", ""))).upper() or None


def pub28(record: PersonRecord) -> Pub28 | None:
    """The record's street address in Pub 28 form, or None if it has no street line.

    Addresses scourgify cannot parse (PO boxes, rural routes) fall back to upper case with
    periods and commas removed, so they still compare.
    """
    lines = tuple(collapse(line) for line in record.address_line if line.strip())
    if not lines:
        return None
    return _pub28(lines, record.city, record.state, record.postal_code)


@lru_cache(maxsize=256)  # a drive compares the same few addresses many times (scourgify is slow)
def _pub28(
    lines: tuple[str, ...], city: str | None, state: str | None, postal_code: str | None
) -> Pub28:
    zip_code = parse_zip(postal_code)
    raw = {
        "address_line_1": lines[0],
        "address_line_2": " ".join(lines[1:]) or None,
        "city": city,
        "state": state,
        "postal_code": zip_code.render() if zip_code else None,
    }
    try:
        out = normalize_address_record(raw, strict=False)
    except AddressNormalizationError:
        return Pub28(
            line1=_fallback(" ".join(lines)) or "",
            line2=None,
            city=_fallback(city),
            state=_fallback(state),
        )
    return Pub28(
        line1=str(out["address_line_1"]),
        line2=_fallback(out["address_line_2"]),
        city=_fallback(out["city"]),
        state=_fallback(out["state"]),
    )


def _display(record: PersonRecord) -> str:
    parts = [*record.address_line, record.city or "", record.state or ""]
    return ", ".join(p.strip() for p in parts if p and p.strip())


def _raw(record: PersonRecord) -> tuple[tuple[str, ...], str | None, str | None]:
    return tuple(record.address_line), record.city, record.state


def _abbreviations_cited(displays: tuple[str, str], normal: Pub28) -> list[str]:
    normal_words = set(normal.render().replace(",", " ").split())
    cited: list[str] = []
    for display in displays:
        for word in _WORD.findall(display):
            key = word.rstrip(".").upper()
            abbreviation = _ABBREVIATIONS.get(key)
            if (
                abbreviation
                and abbreviation != key
                and key not in normal_words
                and abbreviation in normal_words
            ):
                note = f"'{word.rstrip('.')}' is abbreviated '{abbreviation}'"
                if note not in cited:
                    cited.append(note)
    return cited


def _street_tokens(line1: str) -> list[str]:
    return line1.replace("-", " ").split()


def _spelling_variant(
    a: Pub28, b: Pub28, zip_a: Zip | None, zip_b: Zip | None
) -> tuple[Pub28, list[str]] | None:
    """If ``a`` and ``b`` spell one address differently, the address to write and the reasons."""
    if zip_a is None or zip_b is None or zip_a.zip5 != zip_b.zip5:
        return None
    if a.state != b.state or unit_key(a.line2) != unit_key(b.line2):
        return None
    tokens_a, tokens_b = _street_tokens(a.line1), _street_tokens(b.line1)
    if not tokens_a or not tokens_b or tokens_a[0] != tokens_b[0] or not tokens_a[0].isdigit():
        return None
    reasons = [f"same house number {tokens_a[0]} and ZIP {zip_a.zip5}"]
    line1 = b.line1
    if tokens_a != tokens_b:
        shorter, longer = sorted((tokens_a, tokens_b), key=len)
        if len(longer) != len(shorter) + 1 or longer[:-1] != shorter:
            return None
        if longer[-1] not in _STREET_SUFFIXES:
            return None
        full, partial = (a, b) if longer is tokens_a else (b, a)
        line1 = full.line1
        reasons.append(f"'{partial.line1}' lacks the street suffix of '{full.line1}'")
    elif a.line1 != b.line1:
        reasons.append(f"'{a.line1}' and '{b.line1}' differ only in punctuation")
    if a.city != b.city:
        if a.city is None or b.city is None:
            return None
        sound_a, sound_b = jellyfish.metaphone(a.city), jellyfish.metaphone(b.city)
        if sound_a != sound_b:
            return None
        reasons.append(f"'{a.city}' sounds like '{b.city}' (metaphone {sound_a})")
    return Pub28(line1=line1, line2=b.line2, city=b.city, state=b.state), reasons


def compare_address(a: PersonRecord, b: PersonRecord, labels: tuple[str, str]) -> Mismatch | None:
    """Compare street, city and state (ZIP is ``compare_postal_code``); ``b`` is the reference."""
    if _raw(a) == _raw(b):
        return None
    display_a, display_b = _display(a), _display(b)
    if display_a == display_b:
        return None
    norm_a, norm_b = pub28(a), pub28(b)
    if norm_a is None or norm_b is None:
        return None
    values: dict[str, str | None] = {labels[0]: display_a, labels[1]: display_b}
    if fold(display_a) == fold(display_b):
        proposed = norm_b.render()
        return mismatch(
            "address",
            "case_whitespace",
            values,
            f"the addresses differ only in case or spacing: write the Pub 28 form '{proposed}'",
            proposed,
        )
    if norm_a == norm_b:
        proposed = norm_b.render()
        cited = _abbreviations_cited((display_a, display_b), norm_b)
        rule = "; ".join(cited) if cited else "both normalise to the same address"
        return mismatch(
            "address",
            "address_abbreviation",
            values,
            f"USPS Pub 28: {rule}: write '{proposed}'",
            proposed,
        )
    if (norm_a.line1, unit_key(norm_a.line2), norm_a.city, norm_a.state) == (
        norm_b.line1,
        unit_key(norm_b.line2),
        norm_b.city,
        norm_b.state,
    ):
        proposed = norm_b.render()
        return mismatch(
            "address",
            "address_abbreviation",
            values,
            "USPS Pub 28 (Appendix C2): the secondary unit designators name the same dwelling "
            "unit on the same primary address: the chart's form is kept",
            proposed,
        )
    variant = _spelling_variant(norm_a, norm_b, parse_zip(a.postal_code), parse_zip(b.postal_code))
    if variant is not None:
        address, reasons = variant
        proposed = address.render()
        return mismatch(
            "address",
            "address_spelling",
            values,
            f"one address spelled two ways ({'; '.join(reasons)}): write '{proposed}'",
            proposed,
        )
    return mismatch(
        "address",
        "address_differs",
        values,
        f"'{norm_a.render()}' and '{norm_b.render()}' are different addresses in USPS Pub 28 "
        "form; a change of address is held for a person",
    )


def compare_postal_code(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """Compare ZIP codes: ZIP+4 against its own ZIP5 is low risk; ``b`` is the reference."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    zip_a, zip_b = parse_zip(a), parse_zip(b)
    if zip_a is None or zip_b is None:
        if fold(a) == fold(b):
            return mismatch(
                "address.postalCode",
                "case_whitespace",
                values,
                f"'{a}' and '{b}' differ only in spacing",
                collapse(b),
            )
        return mismatch(
            "address.postalCode",
            "postal_code_differs",
            values,
            f"'{a}' and '{b}' are not the same US ZIP code",
        )
    if zip_a == zip_b and zip_a.plus4 is None:
        return mismatch(
            "address.postalCode",
            "case_whitespace",
            values,
            f"'{a}' and '{b}' differ only in spacing",
            zip_b.render(),
        )
    if zip_a.zip5 == zip_b.zip5 and (
        zip_a.plus4 is None or zip_b.plus4 is None or zip_a.plus4 == zip_b.plus4
    ):
        fuller = zip_a if zip_a.plus4 else zip_b
        proposed = fuller.render()
        return mismatch(
            "address.postalCode",
            "zip_plus4",
            values,
            f"'{a}' and '{b}' share the ZIP5 {zip_a.zip5} and disagree on no +4 digit: "
            f"write the ZIP+4 '{proposed}'",
            proposed,
        )
    return mismatch(
        "address.postalCode",
        "postal_code_differs",
        values,
        f"ZIP '{zip_a.render()}' and '{zip_b.render()}' are different delivery areas",
    )


def same_address(x: PersonRecord, y: PersonRecord) -> bool:
    """Same street address in Pub 28 form, with the same ZIP5 or the same city and state."""
    norm_x, norm_y = pub28(x), pub28(y)
    if norm_x is None or norm_y is None:
        return False
    if (norm_x.line1, unit_key(norm_x.line2)) != (norm_y.line1, unit_key(norm_y.line2)):
        return False
    zip_x, zip_y = parse_zip(x.postal_code), parse_zip(y.postal_code)
    if zip_x is not None and zip_y is not None:
        return zip_x.zip5 == zip_y.zip5
    return (norm_x.city, norm_x.state) == (norm_y.city, norm_y.state) and norm_x.city is not None
