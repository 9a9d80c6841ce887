"""Identity rules found over-cautious on public data (issue 13): FHIR ``name.use``, USPS Pub 28
secondary unit designators, and accent-only name differences. Every existing high-risk rule
stays (tests/test_reconcile.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.patient import Patient

from carebound.domain.identity import Mismatch, PersonRecord, compare_records
from carebound.fhir import Demographics
from carebound.tools.reconcile._records import patient_changes


def person(source: str, **fields: Any) -> PersonRecord:
    base: dict[str, Any] = {
        "source": source,
        "family": "Pérez",
        "given": ["José", "Luis"],
        "birth_date": date(1961, 8, 14),
        "sex": "male",
        "address_line": ["12 Main St Apt 4B"],
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62704",
    }
    base.update(fields)
    return PersonRecord(**base)


def on(field: str, mismatches: list[Mismatch]) -> Mismatch | None:
    return next((m for m in mismatches if m.field == field), None)


# --- name.use ----------------------------------------------------------------------------------


def _patient(*names: dict[str, Any]) -> Patient:
    return Patient.model_validate({"resourceType": "Patient", "name": list(names)})


def test_a_nickname_only_name_is_not_a_legal_given_name() -> None:
    demo = Demographics.from_patient(
        _patient({"use": "nickname", "family": "Noble", "given": ["Rita"]})
    )
    assert demo.given == ()
    assert demo.family == "Noble"
    assert demo.nicknames == ("Rita",)


def test_a_nickname_only_referral_is_not_held_and_writes_no_given_name() -> None:
    referral = Demographics.from_patient(
        _patient({"use": "nickname", "family": "Noble", "given": ["Bob"]})
    )
    ehr = Demographics.from_patient(
        _patient({"use": "official", "family": "Noble", "given": ["Robert", "James"]})
    )
    a = PersonRecord(source="referral", family=referral.family, given=list(referral.given))
    b = PersonRecord(source="ehr", family=ehr.family, given=list(ehr.given))
    assert compare_records(a, b) == []


def test_maiden_and_old_names_are_history_never_the_current_name() -> None:
    demo = Demographics.from_patient(
        _patient(
            {"use": "maiden", "family": "Smith", "given": ["Ann"]},
            {"use": "old", "family": "Brown", "given": ["Ann"]},
            {"family": "Jones", "given": ["Ann"]},
        )
    )
    assert (demo.family, demo.given) == ("Jones", ("Ann",))
    only_history = Demographics.from_patient(
        _patient({"use": "maiden", "family": "Smith", "given": ["Ann"]})
    )
    assert only_history.given == () and only_history.family is None


def test_official_wins_over_usual_and_nickname_whatever_the_order() -> None:
    demo = Demographics.from_patient(
        _patient(
            {"use": "nickname", "given": ["Peggy"]},
            {"use": "usual", "family": "Noble", "given": ["Maggie"]},
            {"use": "official", "family": "Noble", "given": ["Margaret"]},
        )
    )
    assert demo.given == ("Margaret",)


def test_a_given_name_fix_never_writes_into_a_nickname_entry() -> None:
    chart = {
        "resourceType": "Patient",
        "name": [
            {"use": "nickname", "given": ["Rita"]},
            {"use": "official", "family": "Noble", "given": ["Margarita"]},
        ],
    }
    assert patient_changes(chart, "name.given", "Margarita Ebony") == {
        "name.1.given": ["Margarita", "Ebony"]
    }
    only_nickname = {"resourceType": "Patient", "name": [{"use": "nickname", "given": ["Rita"]}]}
    with pytest.raises(ValueError, match="no legal name"):
        patient_changes(only_nickname, "name.given", "Margarita")


# --- USPS Pub 28 secondary unit designators ---------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("12 Main St Apt 4B", "12 Main St # 4B"),
        ("12 Main St Apt 4B", "12 Main St Unit 4B"),
        ("12 Main Street, Apt. 4B", "12 MAIN ST #4B"),
        ("12 Main St Unit 4B", "12 Main St Ste 4B"),
    ],
)
def test_unit_designators_of_one_dwelling_are_low_risk(a: str, b: str) -> None:
    found = on(
        "address",
        compare_records(person("referral", address_line=[a]), person("ehr", address_line=[b])),
    )
    assert found is not None
    assert found.risk == "low", found.explanation
    assert found.kind == "address_abbreviation"
    assert found.proposed is not None and "4B" in found.proposed
    assert "Pub 28" in found.explanation


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("12 Main St Apt 4B", "12 Main St Apt 4C"),  # another unit
        ("12 Main St Apt 4", "12 Main St Bldg 4"),  # a building is not an apartment
        ("12 Main St Apt 4B", "14 Main St Apt 4B"),  # another house
    ],
)
def test_other_units_or_kinds_stay_high(a: str, b: str) -> None:
    found = on(
        "address",
        compare_records(person("referral", address_line=[a]), person("ehr", address_line=[b])),
    )
    assert found is not None and found.risk == "high", found


# --- accents ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "a", "b", "legal"),
    [
        ("family", "Perez", "Pérez", "Pérez"),
        ("family", "Pérez", "Perez", "Pérez"),
        ("family", "Garcia Marquez", "García Márquez", "García Márquez"),
        ("family", "MUNOZ", "Muñoz", "Muñoz"),
        ("family", "Diaz", "Díaz", "Díaz"),
        ("given", "Zoe", "Zoë", "Zoë"),
        ("given", "Jose Luis", "José Luis", "José Luis"),
        ("given", "Chloé", "CHLOE", "Chloé"),
    ],
)
def test_accent_only_differences_are_low_and_keep_the_accented_form(
    field: str, a: str, b: str, legal: str
) -> None:
    def rec(source: str, value: str) -> PersonRecord:
        if field == "family":
            return person(source, family=value)
        return person(source, given=value.split())

    found = on(f"name.{field}", compare_records(rec("referral", a), rec("ehr", b)))
    assert found is not None
    assert (found.kind, found.risk, found.proposed) == ("accent", "low", legal), found


def test_accents_do_not_hide_a_lost_hyphenated_surname_or_a_different_name() -> None:
    lost = on(
        "name.family",
        compare_records(
            person("referral", family="Garcia"), person("ehr", family="García-Márquez")
        ),
    )
    assert lost is not None and lost.kind == "hyphenated_surname_lost"
    other = on(
        "name.family",
        compare_records(person("referral", family="Pérez"), person("ehr", family="Gómez")),
    )
    assert other is not None and other.risk == "high"
