"""What the reconciler writes about a mismatch, in words that carry no PHI.

A comparison's own ``explanation`` quotes both values ("'Rita' is a nickname of 'Margarita'");
it stays inside the comparison. Everything the agent writes for people and for the audit trail
(a hold's reason, a packet check's detail, a finding's explanation) names the fact instead: which
element differs, between which sources, and under which rule. The values themselves are facts of
the packet and of the findings, masked or revealed with the rest (``carebound._phi``).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

FIELD_NAMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "name.family": "family name",
        "name.given": "given name",
        "birthDate": "birth date",
        "gender": "administrative sex",
        "address": "address",
        "address.postalCode": "ZIP code",
        "telecom.phone": "phone number",
        "identifier.member_id": "member id",
        "coverage.payor": "payer",
        "practitioner.npi": "referring provider's NPI",
        "identity": "patient identity",
    }
)
"""How each compared element is called in prose."""

KIND_WORDING: MappingProxyType[str, str] = MappingProxyType(
    {
        "case_whitespace": "{what} differs only in case or spacing between {sources}",
        "accent": "{what} differs only in accents (and case or spacing) between {sources}; the "
        "accented form is kept",
        "address_abbreviation": "{what} differs between {sources} only by USPS Pub 28 "
        "abbreviations",
        "address_spelling": "{what} differs between {sources} only in spelling or punctuation",
        "zip_plus4": "{what} is ZIP+4 in one of {sources} and ZIP5 in the other",
        "phone_format": "{what} is the same number written differently in {sources}",
        "nickname": "{what} is a known nickname of the legal name in one of {sources}",
        "name_typo": "{what} differs by one character between {sources}",
        "member_id_format": "{what} differs between {sources} only in punctuation, case or a "
        "payer prefix",
        "gender_code": "{what} is the same FHIR code spelled differently in {sources}",
        "identifier_format": "{what} is the same identifier written differently in {sources}",
        "name_differs": "{what} differs between {sources} beyond a nickname or a typo",
        "name_initial": "{what} is an initial in one of {sources}; an initial cannot confirm a "
        "name",
        "hyphenated_surname_lost": "{what} keeps only part of a compound surname in one of "
        "{sources}",
        "dob_differs": "{what} differs between {sources}; any DOB difference is held",
        "dob_day_month_swap": "{what} has day and month swapped between {sources}; which is "
        "right needs a person (any DOB difference is held)",
        "sex_differs": "{what} differs between {sources}; a sex mismatch is held for a person",
        "address_differs": "{what} is a different address in {sources}",
        "postal_code_differs": "{what} is a different delivery area in {sources}",
        "phone_differs": "{what} is a different or unreadable number in {sources}",
        "member_id_differs": "{what} differs between {sources} beyond punctuation or a payer "
        "prefix",
        "payer_differs": "{what} differs between {sources}; a change of payer is held for a person",
        "npi_invalid": "{what} fails its check digit (Luhn with prefix 80840) in {sources}",
        "npi_other_provider": "{what} names two different valid providers in {sources}",
        "family_collision": "another chart of the family at this address could be the patient",
        "coverage_not_found": "the payer has no coverage under the member id(s) on file",
        "coverage_not_in_force": "the coverage in {sources} is not in force on the date of service",
    }
)
"""One PHI-free sentence per mismatch kind; ``{what}`` is the element, ``{sources}`` the
records compared."""


def source_name(label: str) -> str:
    """A record's label in prose: ``ehr`` is "the EHR chart", ``ehr household[0]`` "another
    chart of the family"."""
    if label.startswith("ehr household"):
        return "another chart of the family"
    return {"referral": "the referral", "ehr": "the EHR chart", "payer": "the payer"}.get(
        label, f"the {label} record"
    )


def sources_text(labels: Iterable[str]) -> str:
    """The compared records in prose: "the referral and the EHR chart"."""
    names = list(dict.fromkeys(source_name(label) for label in labels))
    if not names:
        return "the records"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def describe(field: str, kind: str, labels: Iterable[str]) -> str:
    """A PHI-free sentence for a mismatch of ``kind`` in ``field`` between the records
    ``labels`` (the keys of its values)."""
    what = FIELD_NAMES.get(field, field)
    template = KIND_WORDING.get(kind, "{what} differs between {sources}")
    return template.format(what=what, sources=sources_text(labels))
