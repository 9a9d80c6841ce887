"""Demographics: the identity facts of a Patient (and its Coverage) that records are compared on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import TypeVar

from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.patient import Patient
from pydantic import BaseModel, ConfigDict

from carebound.fhir._values import fhir_date

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Da Vinci PAS names the member identification number with a system ending in /MIN.
_PAS_MEMBER_SYSTEM_SUFFIX = "/MIN"

LEGAL_NAME_RANK: dict[str | None, int] = {"official": 0, "usual": 1, None: 2, "temp": 3}
"""HumanName.use values that state the person's name, best first (FHIR name-use). ``nickname``
and ``anonymous`` are what a person is called, not their legal name; ``old`` and ``maiden`` are
history: none of them is compared with, or overwrites, a legal name."""
_ADDRESS_RANK = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4}
_PHONE_RANK = {"home": 0, "mobile": 1, None: 2, "work": 3, "temp": 4}

T = TypeVar("T")


class Demographics(BaseModel):
    """The identity facts of one patient, as one source records them.

    Values are copied as written (no case or format normalisation): comparing them, and deciding
    which differences are harmless, is the reconciliation agent's job.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    family: str | None = None
    """Family name of the chosen legal name (use official, else usual, else unmarked, else temp);
    with no legal name, the family name of a nickname entry; never an old or maiden name."""
    given: tuple[str, ...] = ()
    """Given names of the chosen legal name, in order (first name first); empty when the patient
    has no legal name (a nickname is not a claim about the legal given names)."""
    nicknames: tuple[str, ...] = ()
    """Given names of ``use: nickname`` entries, as written."""
    birth_date: date | None = None
    """Patient.birthDate; None when absent or recorded only to year or month precision."""
    sex: str | None = None
    """Patient.gender (administrative gender code: male, female, other, unknown)."""
    address_lines: tuple[str, ...] = ()
    """Street lines of the chosen address: use home, else unmarked, else temp/work; never old."""
    city: str | None = None
    """City of the chosen address."""
    state: str | None = None
    """State (or province) of the chosen address."""
    postal_code: str | None = None
    """Postal code of the chosen address, as written (ZIP5 or ZIP+4)."""
    phone: str | None = None
    """The chosen phone number: use home, else mobile, else unmarked, else work; as written."""
    member_id: str | None = None
    """Insurance member id: Coverage.subscriberId, else a Coverage.identifier of type MB, else a
    Patient.identifier of type MB (HL7 v2-0203) or with a Da Vinci PAS ``.../MIN`` system."""
    payer: str | None = None
    """The Coverage's first payor: its identifier value, else its display, else its reference."""

    @classmethod
    def from_patient(cls, patient: Patient, coverage: Coverage | None = None) -> Demographics:
        """Extract the demographics of ``patient``, with member id and payer from ``coverage``."""
        names = patient.name or []
        name = _pick(
            [n for n in names if n.use in LEGAL_NAME_RANK], lambda n: n.use, LEGAL_NAME_RANK
        )
        nicknames = [n for n in names if n.use == "nickname"]
        family = name.family if name else next((n.family for n in nicknames if n.family), None)
        address = _pick(
            [a for a in patient.address or [] if a.use != "old"], lambda a: a.use, _ADDRESS_RANK
        )
        phones = [t for t in patient.telecom or [] if t.system == "phone" and t.use != "old"]
        phone = _pick(phones, lambda t: t.use, _PHONE_RANK)
        return cls(
            family=family,
            given=tuple(g for g in name.given or [] if g) if name else (),
            nicknames=tuple(g for n in nicknames for g in n.given or [] if g),
            birth_date=fhir_date(patient.birthDate, partial=False),
            sex=patient.gender,
            address_lines=tuple(x for x in address.line or [] if x) if address else (),
            city=address.city if address else None,
            state=address.state if address else None,
            postal_code=address.postalCode if address else None,
            phone=phone.value if phone else None,
            member_id=_member_id(patient, coverage),
            payer=_payer(coverage),
        )


def _pick(
    items: Sequence[T], use: Callable[[T], str | None], rank: dict[str | None, int]
) -> T | None:
    """The best-ranked item by its ``use`` (first wins among equals); None when empty."""
    if not items:
        return None
    return min(items, key=lambda item: rank.get(use(item), len(rank)))


def _is_member_type(identifier: Identifier) -> bool:
    codings = identifier.type.coding or [] if identifier.type else []
    return any(c.system == _V2_0203 and c.code == "MB" for c in codings)


def _member_id(patient: Patient, coverage: Coverage | None) -> str | None:
    if coverage is not None:
        if coverage.subscriberId:
            return coverage.subscriberId
        for identifier in coverage.identifier or []:
            if identifier.value and _is_member_type(identifier):
                return identifier.value
    for identifier in patient.identifier or []:
        if not identifier.value:
            continue
        system = identifier.system or ""
        if _is_member_type(identifier) or system.endswith(_PAS_MEMBER_SYSTEM_SUFFIX):
            return identifier.value
    return None


def _payer(coverage: Coverage | None) -> str | None:
    if coverage is None or not coverage.payor:
        return None
    payor = coverage.payor[0]
    if payor.identifier is not None and payor.identifier.value:
        return payor.identifier.value
    return payor.display or payor.reference
