"""The shapes of demographic reconciliation: a person record in, mismatches out."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Risk = Literal["low", "high"]
"""``low``: fix automatically and audit it. ``high``: hold for a person."""

PatientField = Literal[
    "name.family",
    "name.given",
    "birthDate",
    "gender",
    "address",
    "address.postalCode",
    "telecom.phone",
]
"""The demographic fields of a patient record (the ones a fix may write to the EHR)."""

MismatchField = Literal[
    PatientField,
    "identifier.member_id",
    "coverage.payor",
    "practitioner.npi",
    "identity",
]
"""Which part of the record disagrees (FHIR-style element paths; ``identity`` is the whole
person, used when another household member could be the real match)."""

MismatchKind = Literal[
    # low risk: fixed automatically, audited
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
    # high risk: held for a person
    "name_differs",
    "name_initial",
    "hyphenated_surname_lost",
    "dob_differs",
    "dob_day_month_swap",
    "sex_differs",
    "address_differs",
    "postal_code_differs",
    "phone_differs",
    "member_id_differs",
    "payer_differs",
    "npi_invalid",
    "npi_other_provider",
    "family_collision",
]
"""The named rule that classified a mismatch; each kind has exactly one risk (``KIND_RISK``)."""

KIND_RISK: MappingProxyType[MismatchKind, Risk] = MappingProxyType(
    {
        "case_whitespace": "low",
        "accent": "low",
        "address_abbreviation": "low",
        "address_spelling": "low",
        "zip_plus4": "low",
        "phone_format": "low",
        "nickname": "low",
        "name_typo": "low",
        "member_id_format": "low",
        "gender_code": "low",
        "identifier_format": "low",
        "name_differs": "high",
        "name_initial": "high",
        "hyphenated_surname_lost": "high",
        "dob_differs": "high",
        "dob_day_month_swap": "high",
        "sex_differs": "high",
        "address_differs": "high",
        "postal_code_differs": "high",
        "phone_differs": "high",
        "member_id_differs": "high",
        "payer_differs": "high",
        "npi_invalid": "high",
        "npi_other_provider": "high",
        "family_collision": "high",
    }
)
"""The risk of every mismatch kind. Anything not on the DOMAIN low-risk list is high."""


class PersonRecord(BaseModel):
    """One system's view of a patient's demographics and coverage, flattened for comparison.

    Every field but ``source`` is optional: a field missing from either record is not compared.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    source: str = Field(min_length=1)
    """Where the record came from, e.g. ``referral``, ``ehr``, ``payer``; the key of its values
    in ``Mismatch.values``."""
    family: str | None = None
    """Family name (surname), as written."""
    given: list[str] = Field(default_factory=list)
    """Given names in order (first, then middle); an element may hold several space-separated
    names."""
    birth_date: date | None = None
    """Date of birth."""
    sex: str | None = None
    """Administrative sex/gender as the source wrote it (``F``, ``female``, ...)."""
    address_line: list[str] = Field(default_factory=list)
    """Street lines of the home address."""
    city: str | None = None
    """City of the home address."""
    state: str | None = None
    """State of the home address (name or USPS code)."""
    postal_code: str | None = None
    """ZIP or ZIP+4."""
    phone: str | None = None
    """Home or mobile phone, any formatting."""
    email: str | None = None
    """E-mail address (used only by ``identity_score``)."""
    government_id: str | None = None
    """Passport, driver's licence or state id number (used only by ``identity_score``)."""
    member_id: str | None = None
    """Insurance member (subscriber) id."""
    payer_id: str | None = None
    """Payer identifier or name (Coverage.payor)."""
    npi: str | None = None
    """NPI of the referring provider."""


class Mismatch(BaseModel):
    """One disagreement between records (or one failed single-record check), classified.

    A ``low`` mismatch carries the value to write (``proposed``); a ``high`` one carries none,
    because a person must decide.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    field: MismatchField
    """The element that disagrees."""
    values: dict[str, str | None]
    """Each source label mapped to its value as written (ISO dates for birthDate)."""
    risk: Risk
    """``low`` (fix and audit) or ``high`` (hold for a person); always ``KIND_RISK[kind]``."""
    kind: MismatchKind
    """The named rule that classified this mismatch."""
    proposed: str | None
    """The normalised value to write, for a low-risk fix; ``None`` when risk is high."""
    explanation: str
    """One sentence citing the rule, for the audit record and the reviewer."""

    @model_validator(mode="after")
    def _risk_matches_kind(self) -> Self:
        if self.risk != KIND_RISK[self.kind]:
            raise ValueError(f"kind {self.kind!r} is {KIND_RISK[self.kind]} risk, not {self.risk}")
        if (self.risk == "low") != (self.proposed is not None):
            raise ValueError("a low-risk mismatch needs a proposed value; a high-risk one has none")
        return self


def mismatch(
    field: MismatchField,
    kind: MismatchKind,
    values: dict[str, str | None],
    explanation: str,
    proposed: str | None = None,
) -> Mismatch:
    """Build a ``Mismatch`` whose risk follows from its kind."""
    return Mismatch(
        field=field,
        values=values,
        risk=KIND_RISK[kind],
        kind=kind,
        proposed=proposed,
        explanation=explanation,
    )
