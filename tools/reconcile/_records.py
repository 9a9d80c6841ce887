"""Person records for reconciliation, read from FHIR JSON.

The referral's patient comes from the run's case; the EHR chart is found through the EHR
connector (by identifier, else family name and date of birth, else family and given name, else
family name with enough HL7 Identity Matching agreement); the payer's view comes from the
Coverage the payer holds for a member id. The reconciler's tools use these readers both for
their results and for the trusted facts the hold policy decides on, so a planner never supplies
a value the gate relies on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal, get_args

from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole

from carebound.domain.identity import Mismatch, PersonRecord, compare_records, identity_score
from carebound.domain.identity._models import PatientField
from carebound.fhir import Demographics, referral_case_of
from carebound.fhir._demographics import LEGAL_NAME_RANK
from carebound.tools.connectors import (
    ConnectorError,
    EHRConnector,
    PayerConnector,
    ResourceNotFoundError,
)
from carebound.tools.connectors._fhir import sorted_json

REFERRAL = "referral"
"""Source label of the referral's record (the case)."""
EHR = "ehr"
"""Source label of the EHR chart."""
PAYER = "payer"
"""Source label of the payer's coverage (matches ``carebound.domain.identity.PAYER_SOURCE``)."""

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
"""Identifier system of a US National Provider Identifier."""

MIN_IDENTITY_SCORE = 9.0
"""Agreement a family-name-only match needs: the HL7 IDI-Patient-L0 threshold."""


PATIENT_FIELDS: frozenset[str] = frozenset(get_args(PatientField))

MatchMethod = Literal["identifier", "family+birthdate", "family+given", "family"]
"""How the EHR chart was found."""

_GENDERS = frozenset({"male", "female", "other", "unknown"})
_ADDRESS_RANK = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4}
_PHONE_RANK = {"home": 0, "mobile": 1, None: 2, "work": 3, "temp": 4}


@dataclass(frozen=True)
class CaseReferral:
    """The referral's patient as the case states it."""

    patient_ref: str
    """``Patient/<id>`` inside the case bundle."""
    record: PersonRecord
    """Its demographics (with member id and payer from the case's Coverage, NPI of the
    requester)."""
    identifiers: tuple[dict[str, str], ...]
    """The patient's identifiers as ``{"system", "value"}`` (system may be absent)."""
    requester_id: str | None
    """Id of the requesting Practitioner (to look the same provider up in the EHR)."""


@dataclass(frozen=True)
class EhrMatch:
    """The EHR chart the referral's patient was matched to, and who else could be meant."""

    patient_id: str | None
    method: MatchMethod | None
    record: PersonRecord | None
    coverage_id: str | None
    """The EHR Coverage whose beneficiary is the chart (None if it has none)."""
    candidates: tuple[str, ...]
    household: tuple[PersonRecord, ...]
    """Other EHR charts sharing the family name (compare_records filters them by address)."""
    household_ids: tuple[str, ...]
    ambiguous: bool
    """Not matched by identifier and a household member could be the patient instead."""

    @property
    def confirmed(self) -> bool:
        """Matched by an identifier the referral carries (strong, not a guess)."""
        return self.method == "identifier"


@dataclass(frozen=True)
class PayerView:
    """What the payer holds for the member ids asked about."""

    record: PersonRecord | None
    """The member as the payer knows them: name, birth date and sex of the beneficiary
    Patient it shares, member id and payer of its Coverage (None: no such member)."""
    member_id: str | None
    """The member id the payer answered for (None: it knows none of them)."""
    coverage_id: str | None
    connected: bool = True
    """False: no payer is connected, so nothing was asked (not the same as "no member")."""
    coverage: dict[str, Any] | None = None
    """The payer's Coverage JSON (status and period decide whether it is in force)."""
    eligibility_inforce: bool | None = None
    """The payer's eligibility answer for that Coverage (None: it gave none)."""


def case_referral(case: Mapping[str, Any]) -> CaseReferral:
    """The referral's patient in ``case`` (a FHIR Bundle as JSON).

    Raises:
        FhirInputError: the case holds no referral ServiceRequest with a Patient subject.
    """
    referral = referral_case_of(case, source="case")
    patient = referral.patient
    requester = referral.requester
    if isinstance(requester, PractitionerRole):
        resolved = referral.resolve(requester.practitioner, container=requester)
        requester = resolved if isinstance(resolved, Practitioner) else None
    npi = _npi(requester) if isinstance(requester, Practitioner | Organization) else None
    demographics = referral.demographics()
    identifiers = tuple(
        {k: v for k, v in (("system", i.system), ("value", i.value)) if v}
        for i in patient.identifier or []
        if i.value
    )
    return CaseReferral(
        patient_ref=f"Patient/{patient.id}",
        record=to_record(demographics, REFERRAL, npi=npi),
        identifiers=identifiers,
        requester_id=requester.id if isinstance(requester, Practitioner) else None,
    )


def to_record(demographics: Demographics, source: str, *, npi: str | None = None) -> PersonRecord:
    """A ``PersonRecord`` of ``demographics`` labelled ``source``."""
    return PersonRecord(
        source=source,
        family=demographics.family,
        given=list(demographics.given),
        birth_date=demographics.birth_date,
        sex=demographics.sex,
        address_line=list(demographics.address_lines),
        city=demographics.city,
        state=demographics.state,
        postal_code=demographics.postal_code,
        phone=demographics.phone,
        member_id=demographics.member_id,
        payer_id=demographics.payer,
        npi=npi,
    )


def _npi(party: Practitioner | Organization | None) -> str | None:
    if party is None:
        return None
    for identifier in party.identifier or []:
        if identifier.system == NPI_SYSTEM and identifier.value:
            return str(identifier.value)
    return None


# --- the EHR -------------------------------------------------------------------------------


def ehr_coverage(ehr: EHRConnector, patient_id: str) -> dict[str, Any] | None:
    """The EHR's Coverage of ``Patient/patient_id`` (active first, then by id), or None."""
    wanted = f"Patient/{patient_id}"
    found = [
        c
        for c in ehr.search("Coverage")
        if str((c.get("beneficiary") or {}).get("reference", "")).endswith(wanted)
        and c.get("status") not in ("cancelled", "entered-in-error")
    ]
    found.sort(key=lambda c: (c.get("status") != "active", str(c.get("id"))))
    return found[0] if found else None


def ehr_record(
    ehr: EHRConnector, patient: Mapping[str, Any], *, requester_id: str | None = None
) -> tuple[PersonRecord, str | None]:
    """The EHR chart ``patient`` as a record, with its Coverage and, when the referral's
    requester is an EHR Practitioner too, that provider's NPI; and the Coverage id."""
    coverage = ehr_coverage(ehr, str(patient["id"]))
    npi = None
    if requester_id:
        try:
            npi = _practitioner_npi(sorted_json(ehr.read("Practitioner", requester_id)))
        except ResourceNotFoundError:
            npi = None
    demographics = demographics_of(patient, coverage)
    return to_record(demographics, EHR, npi=npi), (str(coverage["id"]) if coverage else None)


def demographics_of(
    patient: Mapping[str, Any], coverage: Mapping[str, Any] | None = None
) -> Demographics:
    """``Demographics.from_patient`` of a Patient and its Coverage given as FHIR JSON, parsed
    through the fhir.resources models once per distinct content (a drive reads the same
    chart and Coverage for every fact and tool call of a reconciliation).

    Raises:
        pydantic.ValidationError: a resource is not valid FHIR R4B.
    """
    return _demographics(sorted_json(patient), sorted_json(coverage) if coverage else None)


@lru_cache(maxsize=256)
def _demographics(patient: bytes, coverage: bytes | None) -> Demographics:
    return Demographics.from_patient(
        Patient.model_validate(json.loads(patient)),
        Coverage.model_validate(json.loads(coverage)) if coverage else None,
    )


@lru_cache(maxsize=64)
def _practitioner_npi(practitioner: bytes) -> str | None:
    return _npi(Practitioner.model_validate(json.loads(practitioner)))


def _search_terms(
    referral: CaseReferral,
) -> list[tuple[MatchMethod, dict[str, str]]]:
    record = referral.record
    terms: list[tuple[MatchMethod, dict[str, str]]] = []
    for identifier in referral.identifiers:
        value = identifier["value"]
        system = identifier.get("system")
        terms.append(("identifier", {"identifier": f"{system}|{value}" if system else value}))
    family = (record.family or "").strip()
    if family and record.birth_date is not None:
        terms.append(
            ("family+birthdate", {"family": family, "birthdate": record.birth_date.isoformat()})
        )
    first = " ".join(record.given).split()
    if family and first:
        terms.append(("family+given", {"family": family, "given": first[0]}))
    if family:
        terms.append(("family", {"family": family}))
    return terms


def find_ehr_patient(ehr: EHRConnector, referral: CaseReferral) -> EhrMatch:
    """Find the referral's patient in the EHR; the first search that finds anyone decides.

    Among several charts found the one agreeing most (HL7 Identity Matching weights) wins; a
    family-name-only match needs agreement of at least ``MIN_IDENTITY_SCORE``.
    """
    for method, params in _search_terms(referral):
        hits = ehr.search("Patient", **params)
        if not hits:
            continue
        scored = []
        for hit in hits:
            record, coverage_id = ehr_record(ehr, hit, requester_id=referral.requester_id)
            score = identity_score(referral.record, record)
            scored.append((score, str(hit["id"]), record, coverage_id))
        scored.sort(key=lambda s: (-s[0], s[1]))
        score, patient_id, record, coverage_id = scored[0]
        if method == "family" and score < MIN_IDENTITY_SCORE:
            continue
        household, household_ids = _household(ehr, referral, record, patient_id)
        ambiguous = method != "identifier" and any(
            m.kind == "family_collision"
            for m in compare_records(referral.record, record, household=household)
        )
        return EhrMatch(
            patient_id=patient_id,
            method=method,
            record=record,
            coverage_id=coverage_id,
            candidates=tuple(s[1] for s in scored),
            household=household,
            household_ids=household_ids,
            ambiguous=ambiguous,
        )
    return EhrMatch(
        patient_id=None,
        method=None,
        record=None,
        coverage_id=None,
        candidates=(),
        household=(),
        household_ids=(),
        ambiguous=False,
    )


def _household(
    ehr: EHRConnector, referral: CaseReferral, record: PersonRecord, patient_id: str
) -> tuple[tuple[PersonRecord, ...], tuple[str, ...]]:
    families = {f.strip() for f in (referral.record.family, record.family) if f and f.strip()}
    seen: dict[str, PersonRecord] = {}
    for family in sorted(families):
        for hit in ehr.search("Patient", family=family):
            hit_id = str(hit["id"])
            if hit_id != patient_id and hit_id not in seen:
                seen[hit_id] = ehr_record(ehr, hit)[0]
    ids = tuple(sorted(seen))
    return tuple(seen[i] for i in ids), ids


# --- the payer -----------------------------------------------------------------------------


def payer_view(payer: PayerConnector | None, member_ids: Sequence[str]) -> PayerView:
    """The payer's Coverage (and the member's demographics) for the first of ``member_ids`` it
    knows; ``connected=False`` when there is no payer to ask."""
    if payer is None or not payer.connected():
        return PayerView(record=None, member_id=None, coverage_id=None, connected=False)
    for member_id in member_ids:
        coverage = payer.coverage(member_id)
        if coverage is None:
            continue
        patient = payer.beneficiary(coverage) or {"resourceType": "Patient"}
        demographics = demographics_of(patient, coverage)
        record = PersonRecord(
            source=PAYER,
            family=demographics.family,
            given=list(demographics.given),
            birth_date=demographics.birth_date,
            sex=demographics.sex,
            member_id=demographics.member_id,
            payer_id=demographics.payer,
        )
        try:
            inforce: bool | None = payer.eligibility(member_id).in_force
        except ConnectorError:
            inforce = None  # the payer holds no eligibility answer for it
        return PayerView(
            record=record,
            member_id=member_id,
            coverage_id=str(coverage["id"]),
            coverage=dict(coverage),
            eligibility_inforce=inforce,
        )
    return PayerView(record=None, member_id=None, coverage_id=None)


# --- fields --------------------------------------------------------------------------------


def field_value(record: PersonRecord, field: str) -> str | None:
    """The value of a mismatch field in ``record``, written as ``Mismatch.values`` writes it
    (addresses as ``LINE[, LINE2], CITY, STATE``, dates in ISO form)."""
    if field == "name.family":
        return record.family
    if field == "name.given":
        return " ".join(record.given) or None
    if field == "birthDate":
        return record.birth_date.isoformat() if record.birth_date else None
    if field == "gender":
        return record.sex
    if field == "address":
        parts = [*record.address_line, record.city or "", record.state or ""]
        return ", ".join(p.strip() for p in parts if p and p.strip()) or None
    if field == "address.postalCode":
        return record.postal_code
    if field == "telecom.phone":
        return record.phone
    if field == "identifier.member_id":
        return record.member_id
    if field == "coverage.payor":
        return record.payer_id
    if field == "practitioner.npi":
        return record.npi
    return None


def _address_parts(value: str) -> tuple[list[str], str, str]:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) < 3 or not all(parts):
        raise ValueError(
            "the address must be written 'LINE[, LINE2], CITY, STATE' (comma-separated)"
        )
    return parts[:-2], parts[-2], parts[-1]


def with_field(record: PersonRecord, field: str, value: str) -> PersonRecord:
    """``record`` with ``field`` set to ``value`` (in the form ``field_value`` writes).

    Raises:
        ValueError: ``value`` cannot be a value of ``field``.
    """
    update: dict[str, Any]
    if field == "name.family":
        update = {"family": value}
    elif field == "name.given":
        update = {"given": value.split()}
    elif field == "birthDate":
        update = {"birth_date": date.fromisoformat(value)}
    elif field == "gender":
        update = {"sex": value}
    elif field == "address":
        lines, city, state = _address_parts(value)
        update = {"address_line": lines, "city": city, "state": state}
    elif field == "address.postalCode":
        update = {"postal_code": value}
    elif field == "telecom.phone":
        update = {"phone": value}
    elif field == "identifier.member_id":
        update = {"member_id": value}
    else:
        raise ValueError(f"field {field!r} cannot be written by the reconciler")
    return record.model_copy(update=update)


def field_mismatch(a: PersonRecord, b: PersonRecord, field: str) -> Mismatch | None:
    """The mismatch ``compare_records(a, b)`` finds on ``field``, if any."""
    return next((m for m in compare_records(a, b) if m.field == field), None)


def _chosen(items: Sequence[Mapping[str, Any]], rank: Mapping[str | None, int]) -> int | None:
    """Index of the element ``Demographics.from_patient`` reads (best ``use``, first wins)."""
    best: tuple[int, int] | None = None
    for index, item in enumerate(items):
        use = item.get("use")
        if use == "old":
            continue
        key = (rank.get(use, len(rank)), index)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def patient_changes(patient: Mapping[str, Any], field: str, value: str) -> dict[str, object]:
    """The dotted-path changes (for ``EHRConnector.update_fields``) that write ``value`` into the
    element of ``patient`` that ``Demographics.from_patient`` reads for ``field``.

    Raises:
        ValueError: the value is malformed for the field, or the chart has no such element.
    """
    if field == "birthDate":
        return {"birthDate": date.fromisoformat(value).isoformat()}
    if field == "gender":
        if value not in _GENDERS:
            raise ValueError("the gender given is not a FHIR AdministrativeGender code")
        return {"gender": value}
    if field in ("name.family", "name.given"):
        names = patient.get("name") or []
        legal = [i for i, n in enumerate(names) if n.get("use") in LEGAL_NAME_RANK]
        pick = _chosen([names[i] for i in legal], LEGAL_NAME_RANK)
        if pick is None:
            raise ValueError(
                "the EHR chart has no legal name (official, usual or unmarked) to fix; "
                "nickname, old and maiden names are never overwritten"
            )
        if field == "name.family":
            return {f"name.{legal[pick]}.family": value.strip()}
        return {f"name.{legal[pick]}.given": value.split()}
    if field in ("address", "address.postalCode"):
        index = _chosen(patient.get("address") or [], _ADDRESS_RANK)
        if index is None:
            raise ValueError("the EHR chart has no address to fix")
        if field == "address.postalCode":
            return {f"address.{index}.postalCode": value.strip()}
        lines, city, state = _address_parts(value)
        return {
            f"address.{index}.line": lines,
            f"address.{index}.city": city,
            f"address.{index}.state": state,
        }
    if field == "telecom.phone":
        telecom = patient.get("telecom") or []
        phones = [(i, t) for i, t in enumerate(telecom) if t.get("system") == "phone"]
        chosen = _chosen([t for _, t in phones], _PHONE_RANK)
        if chosen is None:
            raise ValueError("the EHR chart has no phone number to fix")
        return {f"telecom.{phones[chosen][0]}.value": value.strip()}
    raise ValueError(f"field {field!r} is not a Patient field the reconciler writes")
