"""Demographic reconciliation rules: one test per rule class, plus the public Synthea variants."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from carebound.domain import coverage, identity, three_way
from carebound.domain.identity import (
    IDENTITY_WEIGHTS,
    KIND_RISK,
    Mismatch,
    PersonRecord,
    check_record,
    compare_records,
    identity_score,
    npi_is_valid,
)

# CMS's worked NPI example (check digit 3) and two more numbers whose check digit is right.
VALID_NPI = "1234567893"
OTHER_VALID_NPI = "1987654328"


def ehr(**fields: Any) -> PersonRecord:
    """A complete EHR record for Rita Noble; keyword arguments override fields."""
    base: dict[str, Any] = {
        "source": "ehr",
        "family": "Noble",
        "given": ["Margarita", "Ebony"],
        "birth_date": date(1944, 3, 17),
        "sex": "female",
        "address_line": ["7217 BRIGHTON HILL LN"],
        "city": "RALEIGH",
        "state": "NC",
        "postal_code": "27616",
        "phone": "+19194819376",
        "member_id": "XYZ123456789",
        "payer_id": "BCBS-NC",
        "npi": VALID_NPI,
    }
    base.update(fields)
    return PersonRecord(**base)


def referral(**fields: Any) -> PersonRecord:
    """The same person as ``ehr()``, as a referral fax wrote it; override fields to differ."""
    return ehr(source="referral", **fields)


def only(mismatches: list[Mismatch]) -> Mismatch:
    assert len(mismatches) == 1, mismatches
    return mismatches[0]


def assert_low(m: Mismatch, kind: str, proposed: str) -> None:
    assert (m.kind, m.risk, m.proposed) == (kind, "low", proposed), m


def assert_high(m: Mismatch, kind: str) -> None:
    assert (m.kind, m.risk, m.proposed) == (kind, "high", None), m


def test_public_api_is_pinned() -> None:
    assert sorted([*identity.__all__, *coverage.__all__, *three_way.__all__]) == [
        "CoverageProblem",
        "CoverageTerms",
        "CoverageVerdict",
        "ExceptionKind",
        "GoodsReceipt",
        "IDENTITY_WEIGHTS",
        "IdentityAttribute",
        "Invoice",
        "InvoiceLine",
        "KIND_RISK",
        "MatchException",
        "MatchInputError",
        "MatchResult",
        "MatchTolerances",
        "Mismatch",
        "MismatchField",
        "MismatchKind",
        "NPI_PREFIX",
        "PAYER_SOURCE",
        "POLine",
        "PersonRecord",
        "PurchaseOrder",
        "ReceiptLine",
        "Risk",
        "agreeing_attributes",
        "case_coverage",
        "check_record",
        "compare_records",
        "coverage_in_force",
        "coverage_terms",
        "eligibility_inforce",
        "identity_score",
        "npi_is_valid",
        "service_date",
        "three_way_match",
    ]


def test_identical_records_yield_nothing() -> None:
    assert compare_records(referral(), ehr()) == []
    assert check_record(ehr()) == []


def test_missing_fields_are_not_compared() -> None:
    sparse = PersonRecord(source="referral", family="Noble")
    assert compare_records(sparse, ehr()) == []


# --- low risk: each is fixed to the expected value -------------------------------------------


def test_case_in_family_name() -> None:
    m = only(compare_records(referral(family="NOBLE"), ehr(family="Noble")))
    assert m.field == "name.family"
    assert m.values == {"referral": "NOBLE", "ehr": "Noble"}
    assert_low(m, "case_whitespace", "Noble")


def test_case_capitalised_by_nameparser_when_both_one_case() -> None:
    m = only(compare_records(referral(family="mcdonald"), ehr(family="MCDONALD")))
    assert_low(m, "case_whitespace", "McDonald")


def test_whitespace_in_given_names() -> None:
    m = only(compare_records(referral(given=["Margarita  Ebony "]), ehr()))
    assert m.field == "name.given"
    assert_low(m, "case_whitespace", "Margarita Ebony")


def test_pub28_street_suffix_abbreviation() -> None:
    m = only(compare_records(referral(address_line=["7217 Brighton Hill Lane"]), ehr()))
    assert m.field == "address"
    assert_low(m, "address_abbreviation", "7217 BRIGHTON HILL LN, RALEIGH, NC")
    assert "USPS Pub 28: 'Lane' is abbreviated 'LN'" in m.explanation


def test_pub28_directional_occupancy_and_state() -> None:
    a = referral(
        address_line=["100 North Main Street", "Apartment 4"], city="Springfield", state="Illinois"
    )
    b = ehr(address_line=["100 N MAIN ST", "APT 4"], city="SPRINGFIELD", state="IL")
    m = only(compare_records(a, b))
    assert_low(m, "address_abbreviation", "100 N MAIN ST, APT 4, SPRINGFIELD, IL")
    for cited in ("'North' is abbreviated 'N'", "'Apartment' is abbreviated 'APT'"):
        assert cited in m.explanation


def test_address_case_only() -> None:
    m = only(
        compare_records(referral(address_line=["7217 Brighton Hill Ln"], city="Raleigh"), ehr())
    )
    assert_low(m, "case_whitespace", "7217 BRIGHTON HILL LN, RALEIGH, NC")


def test_po_box_that_scourgify_cannot_parse_still_compares() -> None:
    m = only(
        compare_records(referral(address_line=["P.O. Box 12"]), ehr(address_line=["PO BOX 12"]))
    )
    assert_low(m, "address_abbreviation", "PO BOX 12, RALEIGH, NC")


def test_zip5_against_zip_plus4() -> None:
    m = only(compare_records(referral(postal_code="27616"), ehr(postal_code="27616-2045")))
    assert m.field == "address.postalCode"
    assert_low(m, "zip_plus4", "27616-2045")
    m = only(compare_records(referral(postal_code="276162045"), ehr(postal_code="27616")))
    assert_low(m, "zip_plus4", "27616-2045")


@pytest.mark.parametrize(
    ("written", "reference"),
    [
        ("(919) 481-9376", "+19194819376"),
        ("919.481.9376", "919-481-9376"),
        ("1 919 481 9376", "(919) 481-9376"),
    ],
)
def test_phone_formatting(written: str, reference: str) -> None:
    m = only(compare_records(referral(phone=written), ehr(phone=reference)))
    assert m.field == "telecom.phone"
    assert_low(m, "phone_format", "+19194819376")


def test_phone_formatting_of_a_555_number() -> None:
    # 555-01XX numbers are possible (fictional) but never valid: is_possible_number is the test.
    m = only(compare_records(referral(phone="(555) 555-0123"), ehr(phone="555.555.0123")))
    assert_low(m, "phone_format", "+15555550123")


@pytest.mark.parametrize(
    ("nickname", "legal"),
    [
        ("Rita", "Margarita"),
        ("Bob", "Robert"),
        ("Bill", "William"),
        ("Liz", "Elizabeth"),
        ("Peggy", "Margaret"),
    ],
)
def test_nickname_resolves_to_the_legal_name_whichever_side_has_it(
    nickname: str, legal: str
) -> None:
    forward = only(
        compare_records(referral(given=[nickname, "Ebony"]), ehr(given=[legal, "Ebony"]))
    )
    assert forward.field == "name.given"
    assert_low(forward, "nickname", f"{legal} Ebony")
    assert f"'{nickname}' is a nickname of the legal name '{legal}'" in forward.explanation
    backward = only(
        compare_records(referral(given=[legal, "Ebony"]), ehr(given=[nickname, "Ebony"]))
    )
    assert_low(backward, "nickname", f"{legal} Ebony")


def test_nickname_keeps_the_sources_upper_case() -> None:
    m = only(compare_records(referral(given=["BOB"]), ehr(given=["ROBERT"])))
    assert_low(m, "nickname", "ROBERT")


def test_one_character_typo_in_given_name_takes_the_reference_spelling() -> None:
    m = only(compare_records(referral(given=["Jonathon"]), ehr(given=["Jonathan"])))
    assert_low(m, "name_typo", "Jonathan")
    assert "Levenshtein distance 1" in m.explanation


def test_one_character_typo_in_family_name() -> None:
    m = only(compare_records(referral(family="Nobel"), ehr(family="Noble")))
    assert m.field == "name.family"
    # 'Nobel' -> 'Noble' is a transposition: two Levenshtein edits, so it is NOT a typo here.
    assert_high(m, "name_differs")
    m = only(compare_records(referral(family="Nobble"), ehr(family="Noble")))
    assert_low(m, "name_typo", "Noble")


def test_short_names_and_two_real_names_are_not_typos() -> None:
    # Under four letters a one-letter change is too likely another name.
    assert_high(only(compare_records(referral(given=["Jon"]), ehr(given=["Jan"]))), "name_differs")
    # Frances and Francis are one letter apart but two names.
    m = only(compare_records(referral(given=["Frances"]), ehr(given=["Francis"])))
    assert_high(m, "name_differs")


@pytest.mark.parametrize(
    ("written", "reference", "proposed"),
    [
        ("XYZ 123-456-789", "XYZ123456789", "XYZ123456789"),
        ("xyz123456789", "XYZ123456789", "XYZ123456789"),
        ("123456789", "XYZ123456789", "XYZ123456789"),
    ],
)
def test_member_id_punctuation_and_prefix(written: str, reference: str, proposed: str) -> None:
    m = only(compare_records(referral(member_id=written), ehr(member_id=reference)))
    assert m.field == "identifier.member_id"
    assert_low(m, "member_id_format", proposed)


def test_member_id_prefix_follows_the_payer() -> None:
    payer = ehr(source="payer", member_id="123456789")
    m = only(compare_records(referral(member_id="XYZ-123456789"), payer))
    assert_low(m, "member_id_format", "123456789")
    m = only(compare_records(payer, referral(member_id="XYZ-123456789")))
    assert_low(m, "member_id_format", "123456789")


def test_sex_code_spelling() -> None:
    m = only(compare_records(referral(sex="F"), ehr(sex="female")))
    assert m.field == "gender"
    assert_low(m, "gender_code", "female")


def test_npi_punctuation() -> None:
    m = only(compare_records(referral(npi="1234-567-893"), ehr()))
    assert_low(m, "identifier_format", VALID_NPI)


def test_payer_case() -> None:
    m = only(compare_records(referral(payer_id="bcbs-nc"), ehr()))
    assert m.field == "coverage.payor"
    assert_low(m, "case_whitespace", "BCBS-NC")


# --- high risk: each is held, with nothing proposed -------------------------------------------


def test_any_dob_difference_is_held() -> None:
    m = only(compare_records(referral(birth_date=date(1944, 3, 18)), ehr()))
    assert m.field == "birthDate"
    assert m.values == {"referral": "1944-03-18", "ehr": "1944-03-17"}
    assert_high(m, "dob_differs")


def test_swapped_day_and_month_is_named() -> None:
    m = only(
        compare_records(referral(birth_date=date(1980, 4, 7)), ehr(birth_date=date(1980, 7, 4)))
    )
    assert_high(m, "dob_day_month_swap")
    # Same day and month is no swap; a different year is a plain difference.
    m = only(
        compare_records(referral(birth_date=date(1981, 7, 4)), ehr(birth_date=date(1980, 4, 7)))
    )
    assert_high(m, "dob_differs")


def test_different_member_id() -> None:
    m = only(compare_records(referral(member_id="XYZ123456780"), ehr()))
    assert_high(m, "member_id_differs")
    # A long alphabetic prefix is not a payer prefix.
    m = only(compare_records(referral(member_id="ABCD123456789"), ehr(member_id="123456789")))
    assert_high(m, "member_id_differs")


def test_different_payer() -> None:
    assert_high(only(compare_records(referral(payer_id="AETNA"), ehr())), "payer_differs")


def test_npi_failing_its_check_digit() -> None:
    assert npi_is_valid(VALID_NPI) and npi_is_valid(OTHER_VALID_NPI)
    assert not npi_is_valid("1234567890")
    m = only(compare_records(referral(npi="1234567890"), ehr()))
    assert m.field == "practitioner.npi"
    assert_high(m, "npi_invalid")
    assert "'1234567890'" in m.explanation


def test_check_record_flags_an_invalid_npi() -> None:
    m = only(check_record(referral(npi="1234567890")))
    assert m.values == {"referral": "1234567890"}
    assert_high(m, "npi_invalid")
    assert_high(only(check_record(referral(npi="12345"))), "npi_invalid")
    assert check_record(referral(npi="1234 567 893")) == []


def test_npi_of_another_provider() -> None:
    m = only(compare_records(referral(npi=OTHER_VALID_NPI), ehr()))
    assert_high(m, "npi_other_provider")


def test_sex_mismatch() -> None:
    assert_high(only(compare_records(referral(sex="M"), ehr(sex="female"))), "sex_differs")
    assert_high(only(compare_records(referral(sex="unknown"), ehr(sex="F"))), "sex_differs")


@pytest.mark.parametrize("written", ["Garcia", "Lopez", "Garcia Lopez"])
def test_lost_hyphenated_surname(written: str) -> None:
    m = only(compare_records(referral(family=written), ehr(family="Garcia-Lopez")))
    assert m.field == "name.family"
    assert_high(m, "hyphenated_surname_lost")


def test_name_initial_is_held() -> None:
    m = only(compare_records(referral(given=["Margarita", "E."]), ehr()))
    assert_high(m, "name_initial")


def test_missing_middle_name_is_held() -> None:
    assert_high(only(compare_records(referral(given=["Margarita"]), ehr())), "name_differs")


def test_different_address_and_zip() -> None:
    found = compare_records(
        referral(address_line=["865 WHITT TOWN RD"], city="ROXBORO", postal_code="27574"), ehr()
    )
    assert [(m.field, m.kind, m.risk) for m in found] == [
        ("address", "address_differs", "high"),
        ("address.postalCode", "postal_code_differs", "high"),
    ]
    m = only(compare_records(referral(postal_code="27616-2045"), ehr(postal_code="27616-2046")))
    assert_high(m, "postal_code_differs")


def test_different_phone_and_local_only_number() -> None:
    assert_high(only(compare_records(referral(phone="919-481-9377"), ehr())), "phone_differs")
    # Seven digits is possible only locally: without an area code it cannot be matched.
    assert_high(only(compare_records(referral(phone="481-9376"), ehr())), "phone_differs")


# --- family collisions ------------------------------------------------------------------------


def test_twin_at_the_same_address_is_a_collision() -> None:
    twin = ehr(given=["Rosa", "Ebony"])
    found = compare_records(referral(), ehr(), household=[twin])
    m = only(found)
    assert m.field == "identity"
    assert_high(m, "family_collision")
    assert m.values["ehr household[0]"] == "Rosa Ebony Noble, 1944-03-17"
    assert "twins" in m.explanation


def test_sibling_collides_when_the_match_rests_on_a_nickname() -> None:
    sister = ehr(given=["Rosa"], birth_date=date(1946, 5, 2))
    found = compare_records(referral(given=["Rita", "Ebony"]), ehr(), household=[sister])
    assert [m.kind for m in found] == ["nickname", "family_collision"]
    assert_high(found[1], "family_collision")


def test_parent_of_the_same_name_collides() -> None:
    mother = ehr(birth_date=date(1920, 1, 5))
    found = compare_records(referral(), ehr(), household=[mother])
    assert_high(only(found), "family_collision")


def test_household_member_that_is_ruled_out_does_not_collide() -> None:
    # Exact given name and DOB agree with the EHR record and differ from the brother's.
    brother = ehr(given=["Robert"], birth_date=date(1946, 5, 2), sex="male")
    assert compare_records(referral(), ehr(), household=[brother]) == []
    # Another family name, or another address, is not part of this household.
    neighbour = ehr(family="Smith", given=["Rosa"])
    elsewhere = ehr(given=["Rosa"], address_line=["865 WHITT TOWN RD"], postal_code="27574")
    assert compare_records(referral(), ehr(), household=[neighbour, elsewhere]) == []
    # The EHR record itself in the household list is skipped.
    assert compare_records(referral(), ehr(), household=[ehr()]) == []


def test_same_source_labels_are_told_apart() -> None:
    m = only(compare_records(ehr(family="NOBLE"), ehr()))
    assert set(m.values) == {"ehr (a)", "ehr (b)"}


# --- model invariants and identity score ------------------------------------------------------


def test_risk_always_follows_kind_and_high_risk_proposes_nothing() -> None:
    with pytest.raises(ValidationError):
        Mismatch(
            field="birthDate",
            values={},
            risk="low",
            kind="dob_differs",
            proposed="1944-03-17",
            explanation="x",
        )
    with pytest.raises(ValidationError):
        Mismatch(
            field="birthDate",
            values={},
            risk="high",
            kind="dob_differs",
            proposed="x",
            explanation="x",
        )
    with pytest.raises(ValidationError):
        Mismatch(
            field="gender",
            values={},
            risk="low",
            kind="gender_code",
            proposed=None,
            explanation="x",
        )
    assert {k for k, r in KIND_RISK.items() if r == "low"} == {
        "case_whitespace",
        "accent",
        "address_abbreviation",
        "address_spelling",
        "zip_plus4",
        "phone_format",
        "nickname",
        "name_typo",
        "member_id_format",
        "gender_code",
        "identifier_format",
    }


def test_identity_score_uses_the_hl7_weights() -> None:
    full = ehr(email="rita.noble@example.org", government_id="NC-DL 000123456")
    assert identity_score(full, full) == 31.0 == sum(IDENTITY_WEIGHTS.values())
    # Formatting differences still agree: Pub 28, E.164, ZIP5 vs ZIP+4, member-id prefix.
    formatted = full.model_copy(
        update={
            "address_line": ["7217 Brighton Hill Lane"],
            "postal_code": "27616-2045",
            "phone": "(919) 481-9376",
            "member_id": "123-456-789",
            "email": "Rita.Noble@example.org",
            "government_id": "ncdl000123456",
        }
    )
    assert identity_score(formatted, full) == 31.0
    # A nickname does not count as name agreement (3), a DOB slip loses 2, no government id 10.
    slipped = full.model_copy(
        update={"given": ["Rita"], "birth_date": date(1944, 4, 17), "government_id": None}
    )
    assert identity_score(slipped, full) == 16.0
    assert identity_score(PersonRecord(source="x"), full) == 0.0


# --- the public Synthea identity variants -----------------------------------------------------


def _synthea_pairs(public_fixtures: Path) -> list[tuple[str, PersonRecord, PersonRecord]]:
    """(variantId, variant as a referral, its seed as the EHR record) for every variant."""
    data = json.loads((public_fixtures / "synthea" / "test_records.json").read_text())
    pairs = []
    for person in data["records"]:
        for seed in person["seeds"]:
            reference = PersonRecord(
                source="ehr",
                family=seed["familyName"],
                given=seed["givenName"].split(),
                birth_date=date.fromisoformat(person["dateOfBirth"]),
                sex=person["gender"],
                address_line=seed["addressLines"],
                city=seed["city"],
                state=seed["state"],
                postal_code=seed["zipCode"],
                phone=seed["phone"],
            )
            for variant in seed["variants"]:
                written = PersonRecord(
                    source="referral",
                    family=variant["familyName"],
                    given=variant["givenName"].split(),
                    birth_date=date.fromisoformat(variant["dateOfBirth"]),
                    sex=variant["gender"],
                    address_line=variant["addressLines"],
                    city=variant["city"],
                    state=variant["state"],
                    postal_code=variant["zipCode"],
                    phone=variant["phone"],
                )
                pairs.append((variant["variantId"], written, reference))
    return pairs


def test_synthea_variants_invariants(public_fixtures: Path) -> None:
    pairs = _synthea_pairs(public_fixtures)
    assert len(pairs) >= 4
    for variant_id, written, reference in pairs:
        for a, b in ((written, reference), (reference, written)):
            found = compare_records(a, b)
            by_field = {m.field: m for m in found}
            assert len(by_field) == len(found), variant_id
            # Every DOB difference is held, never auto-fixed.
            if written.birth_date != reference.birth_date:
                assert_high(by_field["birthDate"], "dob_differs")
            else:
                assert "birthDate" not in by_field
            # Fields written identically raise nothing.
            assert "telecom.phone" not in by_field
            assert "name.family" not in by_field
            assert "address.postalCode" not in by_field
            # Address spellings of one address are low risk and write the Pub 28 form.
            if "address" in by_field:
                assert by_field["address"].risk == "low", variant_id
            for m in found:
                assert (m.risk == "low") == (m.proposed is not None)


def test_synthea_variants_classified(public_fixtures: Path) -> None:
    kinds = {
        variant_id: {m.field: m for m in compare_records(written, reference)}
        for variant_id, written, reference in _synthea_pairs(public_fixtures)
    }
    # 91011: 'Rita Ebony' recorded as 'Margarita Ebony': the nickname resolves to the legal name.
    assert set(kinds["91011"]) == {"name.given"}
    assert_low(kinds["91011"]["name.given"], "nickname", "Margarita Ebony")
    # 1213: the same plus a month slip in the DOB, which is held.
    assert set(kinds["1213"]) == {"name.given", "birthDate"}
    assert_high(kinds["1213"]["birthDate"], "dob_differs")
    # 1617: '7217 BRIGHTON-HILL, RAHLEY' for '7217 BRIGHTON HILL LN, RALEIGH', same ZIP.
    address = kinds["1617"]["address"]
    assert_low(address, "address_spelling", "7217 BRIGHTON HILL LN, RALEIGH, NC")
    assert "metaphone RL" in address.explanation
    # 1618: initials 'M E' cannot confirm 'Rita Ebony'.
    assert_high(kinds["1618"]["name.given"], "name_initial")
    assert kinds["1618"]["address"].kind == "address_spelling"
