"""Family collisions: another person at the same address who could be the real match.

Twins, a parent and child of the same name, or siblings matched on a nickname share a family
name and an address. Auto-merging across them corrupts two charts, so each such household member
is a high-risk ``family_collision``.
"""

from __future__ import annotations

from collections.abc import Sequence

from carebound.domain._text import fold

from ._address import same_address
from ._models import Mismatch, PersonRecord, mismatch


def summary(record: PersonRecord) -> str:
    """``Given Family, YYYY-MM-DD``: enough for a reviewer to tell household members apart."""
    name = " ".join([*record.given, record.family or ""]).strip() or "(no name)"
    born = record.birth_date.isoformat() if record.birth_date else "DOB unknown"
    return f"{name}, {born}"


def _given(record: PersonRecord) -> str:
    return fold(" ".join(record.given))


def _reason(a: PersonRecord, b: PersonRecord, member: PersonRecord) -> str | None:
    """Why ``member`` could be the person ``a`` describes instead of ``b``, if it could."""
    born = member.birth_date
    if born is not None and born in (a.birth_date, b.birth_date):
        return (
            f"shares the family name, the address and the date of birth {born.isoformat()} "
            "(twins, or a duplicate chart)"
        )
    if _given(member) and _given(member) in (_given(a), _given(b)):
        return "has the same name at the same address (a parent and child, or a duplicate chart)"
    if _given(a) != _given(b):
        return (
            "shares the family name and the address, and the two records' given names differ, "
            "so the match may have picked the wrong family member"
        )
    return None


def household_collisions(
    a: PersonRecord,
    b: PersonRecord,
    household: Sequence[PersonRecord],
    labels: tuple[str, str],
) -> list[Mismatch]:
    """One ``family_collision`` per household member that ``a``'s match to ``b`` cannot rule out.

    A member is considered when it shares the family name of ``a`` or ``b`` and, where both
    sides have a street address, the same address (otherwise the caller's grouping is trusted);
    records equal to ``a`` or ``b`` are skipped.
    """
    families = {fold(r.family) for r in (a, b) if r.family and r.family.strip()}
    found: list[Mismatch] = []
    for index, member in enumerate(household):
        if member in (a, b) or not member.family:
            continue
        if fold(member.family) not in families:
            continue
        placed = [r for r in (a, b) if r.address_line]
        if member.address_line and placed and not any(same_address(member, r) for r in placed):
            continue
        reason = _reason(a, b, member)
        if reason is None:
            continue
        member_label = f"{member.source} household[{index}]"
        found.append(
            mismatch(
                "identity",
                "family_collision",
                {labels[0]: summary(a), labels[1]: summary(b), member_label: summary(member)},
                f"'{summary(member)}' {reason}; hold, do not auto-merge",
            )
        )
    return found
