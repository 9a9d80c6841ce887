"""What the referral agents share: their policy-pack settings, the business-day clock of the
outreach schedule, the referral case as typed FHIR, the referring office's contacts, and the
documents that count as evidence.

Used by ``referral_chaser``, ``packet_builder`` and ``referral_intake`` and by their tools in
``carebound.tools.referral``. Pure code: no Redis, no graph; EHR reads go through the connector
object handed in.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal, TypeVar

from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._errors import CareboundError
from carebound.domain.documents import (
    CLASSIFY_MIN_CONFIDENCE,
    DEFAULT_REQUIREMENTS,
    UNKNOWN,
    Classification,
    DocumentRequirement,
    classify,
    detect_injection,
    document_texts,
    with_injection,
)
from carebound.fhir import (
    ReferralCase,
    document_text,
    parse_bundle,
    parse_resource,
)
from carebound.guardrails import HoldRule, PolicyPack, format_validation_error
from carebound.tools.connectors import Channel, ConnectorError
from carebound.tools.connectors._outreach import INBOUND_ID_SYSTEM

# --- settings --------------------------------------------------------------------------------


class ReferralSettingsError(CareboundError):
    """A referral agent's section of the policy pack's ``settings`` is invalid."""


class CitedRequirement(DocumentRequirement):
    """A document requirement with the id and wording a decision packet cites."""

    id: str = Field(min_length=1)
    """Stable id cited in packets, e.g. ``REQ-NOTE``."""
    text: str = Field(min_length=1)
    """The requirement in words, shown to reviewers."""


def _cited_defaults() -> list[CitedRequirement]:
    ids = {"coverage": "REQ-COV", "11506-3": "REQ-NOTE", "prior-auth": "REQ-PA"}
    return [
        CitedRequirement(
            **r.model_dump(), id=ids.get(r.code, f"REQ-{r.code}"), text=f"{r.display} is required."
        )
        for r in DEFAULT_REQUIREMENTS
    ]


def _default_channels() -> list[Channel]:
    return ["fax", "portal", "email", "phone"]


class OutreachSchedule(BaseModel):
    """How the referring office is chased: attempts spread over a window of business days."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    attempts: int = Field(default=3, ge=1, le=10)
    """How many requests go out before a person takes over."""
    window_business_days: int = Field(default=5, ge=1, le=60)
    """Business days (Monday-Friday) from the first attempt to the hand-over. Attempt k (from
    0) goes out floor(k * window / attempts) business days after the first."""
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    """Channels to reach the office on, in order of preference."""


class ChaseSettings(BaseModel):
    """``settings.referral_chaser`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    requirements: list[CitedRequirement] = Field(default_factory=_cited_defaults)
    """What every referral must carry (also what the packet builder checks)."""
    outreach: OutreachSchedule = Field(default_factory=OutreachSchedule)
    """The outreach schedule."""
    escalate_to: str = Field(default="Intake coordinators", min_length=1)
    """Owner (display) of the EHR Task that hands an unanswered request to people."""


class Criterion(BaseModel):
    """One acceptance check of the decision packet, with the id and wording it cites."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(min_length=1)
    """Stable id cited in packets, e.g. ``ACC-ORDER``."""
    check: Literal["order_active", "parties_named", "records_agree", "payer_verified"]
    """What the code checks: ``order_active`` (ServiceRequest.status is active),
    ``parties_named`` (the referral names its requester and the service asked for),
    ``records_agree`` (no high-risk mismatch between records is left open),
    ``payer_verified`` (the payer confirms the member's coverage in force; not verified, neither
    passed nor failed, when no payer is connected)."""
    text: str = Field(min_length=1)
    """The criterion in words, shown to reviewers."""


def _default_criteria() -> list[Criterion]:
    return [
        Criterion(id="ACC-ORDER", check="order_active", text="The order is active."),
        Criterion(id="ACC-PARTIES", check="parties_named", text="Requester and service named."),
        Criterion(id="ACC-RECORDS", check="records_agree", text="No high-risk mismatch open."),
    ]


class PacketSettings(BaseModel):
    """``settings.packet_builder`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    criteria: list[Criterion] = Field(default_factory=_default_criteria)
    """Acceptance checks besides the document requirements (which come from
    ``settings.referral_chaser.requirements``)."""


class IntakeSettings(BaseModel):
    """``settings.referral_intake`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    scheduling_owner: str = Field(default="Scheduling", min_length=1)
    """Owner (display) of the EHR Task that routes an accepted referral to scheduling."""


M = TypeVar("M", bound=BaseModel)


def _section(pack: PolicyPack, name: str, model: type[M]) -> M:
    raw = pack.settings.get(name) or {}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ReferralSettingsError(
            f"policy pack {pack.name!r}: settings.{name} is invalid:\n"
            f"{format_validation_error(exc)}",
            hint=f"correct settings.{name} in the pack (see guardrails/packs/default.yaml)",
        ) from None


def chase_settings(pack: PolicyPack) -> ChaseSettings:
    """``settings.referral_chaser`` (defaults when absent).

    Raises:
        ReferralSettingsError: the section does not validate.
    """
    return _section(pack, "referral_chaser", ChaseSettings)


def packet_settings(pack: PolicyPack) -> PacketSettings:
    """``settings.packet_builder`` (defaults when absent)."""
    return _section(pack, "packet_builder", PacketSettings)


def intake_settings(pack: PolicyPack) -> IntakeSettings:
    """``settings.referral_intake`` (defaults when absent)."""
    return _section(pack, "referral_intake", IntakeSettings)


# --- business days ---------------------------------------------------------------------------


def add_business_days(moment: datetime, days: int) -> datetime:
    """``moment`` moved forward ``days`` weekdays, keeping the time of day (holidays are not
    modelled). Saturday plus one business day is Monday."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = moment
    left = days
    while left:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def attempt_times(first: datetime, schedule: OutreachSchedule) -> list[datetime]:
    """When each attempt is due, the first at ``first``."""
    n, window = schedule.attempts, schedule.window_business_days
    return [add_business_days(first, (k * window) // n) for k in range(n)]


def handover_time(first: datetime, schedule: OutreachSchedule) -> datetime:
    """When an unanswered request goes to a person: the end of the window."""
    return add_business_days(first, schedule.window_business_days)


# --- the case --------------------------------------------------------------------------------

_CASES: OrderedDict[str, ReferralCase] = OrderedDict()
_CASE_CACHE_SIZE = 32


def referral_case(case: Mapping[str, Any], *, source: str) -> ReferralCase:
    """The referral a case Bundle (JSON) carries; parsed once per distinct Bundle.

    Raises:
        FhirInputError: the Bundle is not valid FHIR R4B or carries no single referral.
    """
    digest = hashlib.sha256(json.dumps(case, sort_keys=True, default=str).encode()).hexdigest()
    found = _CASES.get(digest)
    if found is None:
        found = ReferralCase.from_bundle(parse_bundle(case, source=source), source=source)
        _CASES[digest] = found
        while len(_CASES) > _CASE_CACHE_SIZE:
            _CASES.popitem(last=False)
    else:
        _CASES.move_to_end(digest)
    return found


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


def rule_for_fact(pack: PolicyPack, tool: str, scope: str, fact: str) -> HoldRule | None:
    """The first pack rule about ``fact`` that applies to ``tool`` (by name or scope): the rule
    a packet check on that fact cites."""
    for rule in pack.rules:
        when = rule.when
        if fact not in when.facts:
            continue
        if when.tool is not None:
            names = [when.tool] if isinstance(when.tool, str) else when.tool
            if tool not in names:
                continue
        if when.scope is not None and not fnmatchcase(scope, when.scope):
            continue
        return rule
    return None


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


def ehr_contacts(ehr: Any, case: ReferralCase) -> list[Contact]:
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


# --- documents -------------------------------------------------------------------------------


def evidence_view(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A DocumentReference as evidence: for a document received by outreach, its content date
    is ``attachment.creation`` (when it was written), not ``DocumentReference.date`` (when it
    came in); a received document without one is undated."""
    doc = json.loads(json.dumps(resource))
    received = any(
        isinstance(i, Mapping) and i.get("system") == INBOUND_ID_SYSTEM
        for i in doc.get("identifier", [])
    )
    if not received:
        return dict(doc)
    doc.pop("date", None)
    context = doc.get("context")
    if isinstance(context, dict):
        context.pop("period", None)
    for content in doc.get("content", []):
        created = (content.get("attachment") or {}).get("creation")
        if isinstance(created, str):
            context = doc.setdefault("context", {})
            context["period"] = {"start": created, "end": created}
            break
    return dict(doc)


def parse_document(resource: Mapping[str, Any], *, source: str) -> DocumentReference:
    """Validate one DocumentReference (as evidence, see :func:`evidence_view`).

    Raises:
        FhirInputError: it is not a valid R4B DocumentReference.
    """
    return parse_resource(evidence_view(resource), DocumentReference, source=source)


def typed_codes(resource: Mapping[str, Any]) -> list[str]:
    """The LOINC codes of a DocumentReference's type (JSON)."""
    coding = (resource.get("type") or {}).get("coding") or []
    return [
        str(c["code"])
        for c in coding
        if isinstance(c, Mapping) and c.get("system") == "http://loinc.org" and c.get("code")
    ]


def classify_resource(resource: Mapping[str, Any], *, source: str) -> Classification:
    """Classify an untyped DocumentReference (JSON) from its inline text."""
    text = document_text(parse_resource(dict(resource), DocumentReference, source=source))
    if text is None:
        result = Classification(code=UNKNOWN, display="No readable text", confidence=0.0)
    else:
        result = classify(text)
    # DOC-2: instructions hidden anywhere in the document (description, titles, other textual
    # attachments) count, not only in the text the classifier reads.
    return with_injection(result, detect_injection("\n".join(document_texts(resource))))


def is_confident(result: Classification, code: str | None) -> bool:
    """A classification supports filing as ``code``: same code, at or above the threshold, and
    no instructions to software in the text."""
    return (
        code is not None
        and result.code == code
        and result.confidence >= CLASSIFY_MIN_CONFIDENCE
        and not result.injection_suspected
    )


__all__ = [
    "CHANNEL_OF_SYSTEM",
    "INBOUND_ID_SYSTEM",
    "ChaseSettings",
    "CitedRequirement",
    "Contact",
    "Criterion",
    "IntakeSettings",
    "OutreachSchedule",
    "PacketSettings",
    "ReferralSettingsError",
    "add_business_days",
    "attempt_times",
    "case_contacts",
    "chase_settings",
    "classify_resource",
    "ehr_contacts",
    "evidence_view",
    "handover_time",
    "intake_settings",
    "is_confident",
    "packet_settings",
    "parse_document",
    "patient_ref",
    "pick_contact",
    "reference_of",
    "referral_case",
    "referring_parties",
    "rule_for_fact",
    "same_contact",
    "service_request_ref",
    "typed_codes",
]
