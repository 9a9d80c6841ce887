"""Compare phone numbers by their E.164 form (phonenumbers, region US).

Numbers are accepted when ``is_possible_number`` says a full number is possible, not
``is_valid_number``: the 555 exchange used in test data is possible but never valid.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from ._models import Mismatch, mismatch

_REGION = "US"


@lru_cache(maxsize=256)  # a drive compares the same few numbers for every fact and tool call
def e164(text: str) -> str | None:
    """The E.164 form of ``text`` (with `` ext. N`` when it has one), or None if impossible."""
    try:
        number = phonenumbers.parse(text, _REGION)
    except NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    formatted = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return f"{formatted} ext. {number.extension}" if number.extension else formatted


def compare_phone(a: str, b: str, labels: tuple[str, str]) -> Mismatch | None:
    """Compare two phone numbers as written; same E.164 number is a formatting fix."""
    if a == b or not a.strip() or not b.strip():
        return None
    values: dict[str, str | None] = {labels[0]: a, labels[1]: b}
    number_a, number_b = e164(a), e164(b)
    if number_a is None or number_b is None:
        unreadable = a if number_a is None else b
        return mismatch(
            "telecom.phone",
            "phone_differs",
            values,
            f"'{unreadable}' is not a possible US phone number, so the two cannot be matched",
        )
    if number_a == number_b:
        return mismatch(
            "telecom.phone",
            "phone_format",
            values,
            f"'{a}' and '{b}' are the same number in E.164 form: write '{number_b}'",
            number_b,
        )
    return mismatch(
        "telecom.phone",
        "phone_differs",
        values,
        f"'{number_a}' and '{number_b}' are different phone numbers",
    )
