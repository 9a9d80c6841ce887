"""identity_score: how strongly two records agree, weighted as the HL7 Identity Matching IG does.

The IG (Interoperable Digital Identity and Patient Matching, "Patient Weighted Elements") weighs
the identity attributes of a match request: a passport, driver's licence or other government id
10; an address, an e-mail, a phone number, or another identifier such as an insurance member id
4 each; first and last name together 3; date of birth 2. Its IDI-Patient-L0 profile asks a match
request for at least 9, L1 for at least 10.

Here the same weights score *agreement*: each attribute present in both records and equal after
normalisation adds its weight once (maximum 31): case and spacing everywhere, Pub 28 and ZIP5 for
addresses, E.164 for phones, punctuation and a payer prefix for member ids. A nickname or a typo
adds nothing: the score is evidence for the match, not a repair.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from carebound.domain._text import alnum_upper, fold

from ._address import same_address
from ._identifiers import compare_member_id
from ._models import PersonRecord
from ._phone import e164

IdentityAttribute = Literal[
    "government_id", "address", "email", "phone", "member_id", "name", "dob"
]

IDENTITY_WEIGHTS: MappingProxyType[IdentityAttribute, int] = MappingProxyType(
    {
        "government_id": 10,
        "address": 4,
        "email": 4,
        "phone": 4,
        "member_id": 4,
        "name": 3,
        "dob": 2,
    }
)
"""HL7 Identity Matching IG weights, per attribute (``name`` is first and last name together)."""


def _both(x: str | None, y: str | None) -> tuple[str, str] | None:
    if x is None or y is None or not x.strip() or not y.strip():
        return None
    return x, y


def _first_and_last(record: PersonRecord) -> tuple[str, str] | None:
    given = " ".join(record.given).split()
    if not given or record.family is None or not record.family.strip():
        return None
    return fold(given[0]), fold(record.family)


def agreeing_attributes(a: PersonRecord, b: PersonRecord) -> list[IdentityAttribute]:
    """The weighted attributes on which ``a`` and ``b`` agree, in ``IDENTITY_WEIGHTS`` order."""
    agree: list[IdentityAttribute] = []
    if (ids := _both(a.government_id, b.government_id)) and alnum_upper(ids[0]) == alnum_upper(
        ids[1]
    ):
        agree.append("government_id")
    if a.address_line and b.address_line and same_address(a, b):
        agree.append("address")
    if (emails := _both(a.email, b.email)) and fold(emails[0]) == fold(emails[1]):
        agree.append("email")
    if (phones := _both(a.phone, b.phone)) and _same_phone(*phones):
        agree.append("phone")
    if (members := _both(a.member_id, b.member_id)) and _same_member(*members):
        agree.append("member_id")
    first_a = _first_and_last(a)
    if first_a is not None and first_a == _first_and_last(b):
        agree.append("name")
    if a.birth_date is not None and a.birth_date == b.birth_date:
        agree.append("dob")
    return agree


def _same_phone(a: str, b: str) -> bool:
    number = e164(a)
    return number is not None and number == e164(b)


def _same_member(a: str, b: str) -> bool:
    difference = compare_member_id(a, b, ("a", "b"), payer_side=None)
    return difference is None or difference.kind == "member_id_format"


def identity_score(a: PersonRecord, b: PersonRecord) -> float:
    """Sum of the HL7 Identity Matching weights of the attributes ``a`` and ``b`` agree on.

    0 (nothing in common) to 31 (everything agrees); compare with the IG's thresholds, 9 (L0)
    and 10 (L1), to judge whether the agreement would even make a well-formed match request.
    """
    return float(sum(IDENTITY_WEIGHTS[attribute] for attribute in agreeing_attributes(a, b)))
