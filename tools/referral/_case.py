"""The referral a run's case carries, its references, and the referring office's contacts.

The case Bundle is parsed once per distinct Bundle (a small cache); contacts come either with the
referral (not on file) or from the EHR's own record of the referring party (on file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from pydantic import BaseModel, ConfigDict

from carebound.fhir import ReferralCase, referral_case_of
from carebound.tools.connectors import Channel, ConnectorError, EHRConnector

# --- the case --------------------------------------------------------------------------------


def referral_case(case: Mapping[str, Any], *, source: str) -> ReferralCase:
    """The referral a case Bundle (JSON) carries; parsed once per distinct Bundle
    (:func:`carebound.fhir.referral_case_of`).

    Raises:
        FhirInputError: the Bundle is not valid FHIR R4B or carries no single referral.
    """
    return referral_case_of(case, source=source)


def reference_of(resource: Any) -> str:
    """``Type/id`` of a fhir.resources resource."""
    return f"{resource.get_resource_type()}/{resource.id}"


def service_request_ref(case: ReferralCase) -> str:
    """``ServiceRequest/<id>`` of the referral (its JSON path when it has no id)."""
    request = case.service_request
    if request.id:
        return f"ServiceRequest/{request.id}"
    return case.path_of(request) or "ServiceRequest"


def patient_ref(case: ReferralCase) -> str:
    """``Patient/<id>`` of the referral's patient."""
    return f"Patient/{case.patient.id}" if case.patient.id else "Patient"


# --- contacts --------------------------------------------------------------------------------

CHANNEL_OF_SYSTEM: Mapping[str, Channel] = {
    "fax": "fax",
    "url": "portal",
    "email": "email",
    "phone": "phone",
}
"""ContactPoint.system -> the outreach channel that uses it."""


class Contact(BaseModel):
    """A way to reach the referring office."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    channel: Channel
    value: str
    party: str
    """Whose contact it is (``Practitioner/<id>``, ``Organization/<id>``, ...)."""
    on_file: bool
    """True when it comes from the EHR's own record of that party, False when it only
    arrived with the referral."""


def same_contact(channel: str, a: str, b: str) -> bool:
    """Whether two contact values are the same (phone/fax by their last ten digits)."""
    if channel in ("fax", "phone"):
        da, db = _digits(a), _digits(b)
        return bool(da) and da == db
    return a.strip().casefold() == b.strip().casefold()


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())[-10:]


def referring_parties(case: ReferralCase) -> list[str]:
    """``Type/id`` of who asked for the referral: the requester and, for a PractitionerRole,
    its practitioner and organization."""
    requester = case.requester
    if requester is None or not requester.id:
        return []
    parties = [reference_of(requester)]
    if isinstance(requester, PractitionerRole):
        for ref in (requester.practitioner, requester.organization):
            target = case.resolve(ref, container=requester) if ref is not None else None
            if target is not None and target.id:
                parties.append(reference_of(target))
            elif ref is not None and ref.reference and "/" in ref.reference:
                parties.append("/".join(ref.reference.split("/")[-2:]))
    return list(dict.fromkeys(parties))


def _telecom_contacts(telecom: Iterable[Any], party: str, *, on_file: bool) -> list[Contact]:
    found = []
    for point in telecom:
        system = point.get("system") if isinstance(point, Mapping) else point.system
        value = point.get("value") if isinstance(point, Mapping) else point.value
        channel = CHANNEL_OF_SYSTEM.get(str(system))
        if channel and isinstance(value, str) and value.strip():
            found.append(Contact(channel=channel, value=value, party=party, on_file=on_file))
    return found


def case_contacts(case: ReferralCase) -> list[Contact]:
    """Contacts of the referring parties as the referral itself gives them (not on file)."""
    found: list[Contact] = []
    for party in referring_parties(case):
        resource = case.resolve(Reference(reference=party))
        if resource is not None:
            telecom = getattr(resource, "telecom", None) or []
            found.extend(_telecom_contacts(telecom, party, on_file=False))
    return found


def ehr_contacts(ehr: EHRConnector, case: ReferralCase) -> list[Contact]:
    """Contacts on file: the EHR's own records of the referring parties (by type and id)."""
    found: list[Contact] = []
    for party in referring_parties(case):
        kind, _, ident = party.partition("/")
        try:
            record = ehr.read(kind, ident)
        except ConnectorError:
            continue
        found.extend(_telecom_contacts(record.get("telecom", []), party, on_file=True))
    return found


def pick_contact(contacts: Iterable[Contact], channels: Iterable[Channel]) -> Contact | None:
    """The contact to use: on file before not on file, then by channel preference."""
    order = {channel: n for n, channel in enumerate(channels)}
    usable = [c for c in contacts if c.channel in order]
    usable.sort(key=lambda c: (not c.on_file, order[c.channel]))
    return usable[0] if usable else None
