"""compare_records and check_record: every field comparator, in a fixed order."""

from __future__ import annotations

from collections.abc import Sequence

from ._address import compare_address, compare_postal_code
from ._household import household_collisions
from ._identifiers import check_npi, compare_member_id, compare_npi, compare_payer
from ._models import Mismatch, PersonRecord
from ._names import compare_family, compare_given
from ._phone import compare_phone
from ._vitals import compare_birth_date, compare_sex

PAYER_SOURCE = "payer"
"""Source label of payer records: the payer issues member ids, so its spelling wins."""


def _labels(a: PersonRecord, b: PersonRecord) -> tuple[str, str]:
    if a.source != b.source:
        return a.source, b.source
    return f"{a.source} (a)", f"{b.source} (b)"


def compare_records(
    a: PersonRecord,
    b: PersonRecord,
    *,
    household: Sequence[PersonRecord] | None = None,
) -> list[Mismatch]:
    """Classify every disagreement between two records of (supposedly) one person.

    ``b`` is the record of reference (normally the EHR): where a low-risk fix has to choose one
    side's spelling (a name typo, a city spelling), ``proposed`` takes ``b``'s. Standards decide
    otherwise: Pub 28 for addresses, E.164 for phones, the legal name over a nickname, ZIP+4
    over ZIP5, and a ``payer`` record's member id.

    Fields missing from either record are not compared. Values identical as written yield
    nothing; values equal after normalisation yield a low-risk mismatch (there is something to
    fix). Single-record failures (an NPI failing its check digit) are ``check_record``'s, except
    where two differing NPIs are explained by one being invalid.

    Args:
        a: the incoming record (referral, payer response, ...).
        b: the record of reference.
        household: other records at the same address (e.g. from the EHR); each one that could be
            the real match for ``a`` adds a high-risk ``family_collision``.

    Returns:
        Mismatches in a fixed field order: family, given, birthDate, gender, address, ZIP, phone,
        member id, payer, NPI, then family collisions.
    """
    labels = _labels(a, b)
    found: list[Mismatch | None] = []
    if a.family is not None and b.family is not None:
        found.append(compare_family(a.family, b.family, labels))
    found.append(compare_given(a.given, b.given, labels))
    if a.birth_date is not None and b.birth_date is not None:
        found.append(compare_birth_date(a.birth_date, b.birth_date, labels))
    if a.sex is not None and b.sex is not None:
        found.append(compare_sex(a.sex, b.sex, labels))
    found.append(compare_address(a, b, labels))
    if a.postal_code is not None and b.postal_code is not None:
        found.append(compare_postal_code(a.postal_code, b.postal_code, labels))
    if a.phone is not None and b.phone is not None:
        found.append(compare_phone(a.phone, b.phone, labels))
    if a.member_id is not None and b.member_id is not None:
        payer_side = next(
            (i for i, r in enumerate((a, b)) if r.source == PAYER_SOURCE and a.source != b.source),
            None,
        )
        found.append(compare_member_id(a.member_id, b.member_id, labels, payer_side=payer_side))
    if a.payer_id is not None and b.payer_id is not None:
        found.append(compare_payer(a.payer_id, b.payer_id, labels))
    if a.npi is not None and b.npi is not None:
        found.append(compare_npi(a.npi, b.npi, labels))
    mismatches = [m for m in found if m is not None]
    if household:
        mismatches.extend(household_collisions(a, b, household, labels))
    return mismatches


def check_record(record: PersonRecord) -> list[Mismatch]:
    """Failures visible in one record alone: today, an NPI failing its check digit."""
    found: list[Mismatch] = []
    if record.npi is not None and record.npi.strip():
        failure = check_npi(record.npi, record.source)
        if failure is not None:
            found.append(failure)
    return found
