"""Compare identifiers: insurance member id, payer, and the referring provider's NPI.

Low risk: member-id punctuation, case or a short alphabetic payer prefix (BCBS-style ``XYZ``);
NPI punctuation. High risk: a different member id or payer, an NPI failing its check digit
(Luhn over the number prefixed with 80840, the NPI's ISO 7812 issuer prefix), different NPIs.
"""

from __future__ import annotations

import re

from stdnum import luhn

from carebound.domain._text import alnum_upper, collapse, fold

from ._models import Mismatch, mismatch

NPI_PREFIX = "80840"
"""ISO 7812 card-issuer prefix of US health identifiers: the NPI check digit is computed over it."""

_MAX_PAYER_PREFIX = 3
_MIN_MEMBER_ID = 5
_NON_DIGIT = re.compile(r"\D")
_SEPARATORS = re.compile(r"[\s\-]")


def npi_is_valid(npi: str) -> bool:
    """True when ``npi`` is ten digits and passes Luhn over ``80840`` + ``npi``."""
    return len(npi) == 10 and npi.isdigit() and luhn.is_valid(NPI_PREFIX + npi)


def _prefixed(longer: str, shorter: str) -> bool:
    prefix = longer[: len(longer) - len(shorter)]
    return (
        len(shorter) >= _MIN_MEMBER_ID
        and longer.endswith(shorter)
        and 0 < len(prefix) <= _MAX_PAYER_PREFIX
        and prefix.isalpha()
    )


def compare_member_id(
    a: str, b: str, labels: tuple[str, str], *, payer_side: int | None
) -> Mismatch | None:
    """Compare member ids; ``payer_side`` (0 or 1) is the side the payer issued, if any."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    norm_a, norm_b = alnum_upper(a), alnum_upper(b)
    if norm_a and norm_a == norm_b:
        return mismatch(
            "identifier.member_id",
            "member_id_format",
            values,
            f"'{a}' and '{b}' differ only in punctuation, spacing or case: write '{norm_b}'",
            norm_b,
        )
    shorter, longer = sorted((norm_a, norm_b), key=len)
    if _prefixed(longer, shorter):
        proposed = (norm_a, norm_b)[payer_side] if payer_side is not None else longer
        prefix = longer[: len(longer) - len(shorter)]
        return mismatch(
            "identifier.member_id",
            "member_id_format",
            values,
            f"'{longer}' is '{shorter}' with the payer prefix '{prefix}': write '{proposed}'",
            proposed,
        )
    return mismatch(
        "identifier.member_id",
        "member_id_differs",
        values,
        f"member ids '{norm_a}' and '{norm_b}' differ beyond punctuation or a payer prefix",
    )


def compare_payer(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """Compare payer ids or names; only case and spacing may differ."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    if fold(a) == fold(b):
        proposed = collapse(b)
        return mismatch(
            "coverage.payor",
            "case_whitespace",
            values,
            f"'{a}' and '{b}' differ only in case or spacing: write '{proposed}'",
            proposed,
        )
    return mismatch(
        "coverage.payor",
        "payer_differs",
        values,
        f"payers '{a}' and '{b}' differ; a change of payer is held for a person",
    )


def compare_npi(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """Compare referring-provider NPIs (check digits included)."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    digits_a, digits_b = _NON_DIGIT.sub("", a), _NON_DIGIT.sub("", b)
    invalid = [raw for raw, digits in ((a, digits_a), (b, digits_b)) if not npi_is_valid(digits)]
    if invalid:
        return mismatch(
            "practitioner.npi",
            "npi_invalid",
            values,
            f"NPI '{invalid[0]}' fails its check digit (Luhn with prefix {NPI_PREFIX})",
        )
    if digits_a == digits_b:
        return mismatch(
            "practitioner.npi",
            "identifier_format",
            values,
            f"'{a}' and '{b}' are the same NPI written differently: write '{digits_b}'",
            digits_b,
        )
    return mismatch(
        "practitioner.npi",
        "npi_other_provider",
        values,
        f"NPIs '{digits_a}' and '{digits_b}' are both valid but name different providers",
    )


def check_npi(npi: str, label: str) -> Mismatch | None:
    """A failure when ``npi`` (digits only, as written) is not a valid NPI."""
    if npi_is_valid(_SEPARATORS.sub("", npi)):
        return None
    return mismatch(
        "practitioner.npi",
        "npi_invalid",
        {label: npi},
        f"NPI '{npi}' is not ten digits passing the check digit (Luhn with prefix {NPI_PREFIX})",
    )
