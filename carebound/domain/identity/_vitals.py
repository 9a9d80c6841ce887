"""Compare date of birth and administrative sex: any real difference is held for a person."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType

from carebound.domain._text import fold

from ._models import Mismatch, mismatch

_SEX_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "m": "male",
        "male": "male",
        "f": "female",
        "female": "female",
        "o": "other",
        "other": "other",
        "u": "unknown",
        "unk": "unknown",
        "unknown": "unknown",
    }
)
"""Common spellings of FHIR AdministrativeGender codes."""


def compare_birth_date(a: date, b: date, labels: tuple[str, str]) -> Mismatch | None:
    """Any DOB difference is high risk; a swapped day and month is named as such."""
    if a == b:
        return None
    values: dict[str, str | None] = {labels[0]: a.isoformat(), labels[1]: b.isoformat()}
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return mismatch(
            "birthDate",
            "dob_day_month_swap",
            values,
            f"{a.isoformat()} and {b.isoformat()} swap day and month; which is right needs "
            "a person (any DOB difference is held)",
        )
    return mismatch(
        "birthDate",
        "dob_differs",
        values,
        f"dates of birth {a.isoformat()} and {b.isoformat()} differ; any DOB difference is held",
    )


def sex_code(text: str) -> str | None:
    """The FHIR AdministrativeGender code for a common spelling, or None."""
    return _SEX_CODES.get(fold(text))


def compare_sex(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """The same FHIR code spelled two ways is low risk; different codes are held."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    code_a, code_b = sex_code(a), sex_code(b)
    if code_a is not None and code_a == code_b:
        return mismatch(
            "gender",
            "gender_code",
            values,
            f"'{a}' and '{b}' both mean the FHIR AdministrativeGender code '{code_b}'",
            code_b,
        )
    return mismatch(
        "gender",
        "sex_differs",
        values,
        f"sex '{a}' and '{b}' differ; a sex mismatch is held for a person",
    )
