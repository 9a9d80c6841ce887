"""ReferralCase: a typed, read-only view of the referral a Bundle carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from carebound.fhir._demographics import Demographics
from carebound.fhir._errors import FhirInputError, FhirIssue
from carebound.fhir._index import BundleIndex
from carebound.fhir._values import concept_label, fhir_date

#: ServiceRequest intents that make it the referral order of a case. Proposals and options are
#: suggestions, and filler/reflex/instance orders are the performer's own follow-on orders.
REFERRAL_INTENTS = ("order", "original-order", "plan", "directive")

#: Statuses that withdraw a financial resource (Coverage, eligibility, ClaimResponse) from use.
_VOID = ("cancelled", "entered-in-error")

Party = Practitioner | PractitionerRole | Organization
"""Who can request or perform a referral."""

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True, kw_only=True, eq=False)
class ReferralCase:
    """The referral a Bundle carries, resolved into typed parts. Build it with :meth:`from_bundle`.

    What is read from where:

    - ``service_request``: the one ServiceRequest entry whose intent is in ``REFERRAL_INTENTS``
      and whose status is not entered-in-error.
    - ``patient``: ``ServiceRequest.subject``, which must resolve to a Patient in the Bundle.
    - ``requester``: ``ServiceRequest.requester``; when it has none, the ``provider`` of a
      ``Claim`` with ``use = preauthorization`` in the Bundle. That is how a Da Vinci PAS request
      Bundle names the requesting provider: such a Bundle maps to a case through its referral
      ServiceRequest (PAS ``profile-servicerequest``), its Patient and its Coverage.
    - ``performer``: the first ``ServiceRequest.performer`` that is a Practitioner,
      PractitionerRole or Organization in the Bundle.
    - ``coverage``: Coverage named by ``ServiceRequest.insurance``, then every other Coverage
      entry whose beneficiary is the patient.
    - ``documents``: DocumentReferences named by ``ServiceRequest.supportingInfo`` (entries or
      contained), then every other DocumentReference entry without a subject or about the
      patient. A document whose subject does not resolve to the patient is left out.
    - ``eligibility``, ``claim_responses``: CoverageEligibilityResponse and ClaimResponse
      entries about the patient; ``tasks``: every Task entry.
    - ``authored_on``: the date of ``ServiceRequest.authoredOn`` (a partial date counts as its
      first day); None when absent. There is no fallback: a missing date is shown, not guessed.
    - ``specialty``: ``ServiceRequest.performerType`` (who is asked: "Cardiology"), else
      ``ServiceRequest.code`` (what is asked); in words: the first coding's display, else the
      concept's text, else the first code.
    - ``payer_ids``: for each Coverage payor, its identifier value, the identifier values of the
      Organization it resolves to, and the reference as written; duplicates removed.

    The view shares the fhir.resources objects of ``bundle``: treat them as read-only.
    """

    source: str
    """Where the Bundle came from; named in errors."""
    bundle: Bundle
    service_request: ServiceRequest
    patient: Patient
    requester: Party | None
    performer: Party | None
    coverage: tuple[Coverage, ...]
    documents: tuple[DocumentReference, ...]
    eligibility: tuple[CoverageEligibilityResponse, ...]
    claim_responses: tuple[ClaimResponse, ...]
    tasks: tuple[Task, ...]
    authored_on: date | None
    specialty: str | None
    payer_ids: tuple[str, ...]
    index: BundleIndex = field(repr=False)
    """Reference resolution and JSON paths within ``bundle``."""
    service_request_json: Mapping[str, Any] = field(repr=False)
    """``service_request`` as JSON (``exclude_none``), read-only: made once per parse, where
    each reader dumping the model again cost more than the rest of its work."""

    @classmethod
    def from_bundle(cls, bundle: Bundle, *, source: str) -> ReferralCase:
        """Resolve the referral in ``bundle``.

        Raises:
            FhirInputError: no referral ServiceRequest, more than one, or a subject that is not
                a Patient in the Bundle.
        """
        index = BundleIndex(bundle)
        request = _referral_request(index, source)
        patient = _subject(index, request, source)

        def about_patient(reference: Reference | None, container: Resource) -> bool:
            return reference is None or index.resolve(reference, container=container) is patient

        requester = _party(index, request.requester, request)
        if request.requester is None:
            for claim in index.entries(Claim):
                if claim.use == "preauthorization":
                    requester = _party(index, claim.provider, claim)
                    break
        performer = next(
            (p for ref in request.performer or [] if (p := _party(index, ref, request))), None
        )
        named_coverage = [index.resolve(ref, container=request) for ref in request.insurance or []]
        coverage = _unique(
            [c for c in named_coverage if isinstance(c, Coverage)]
            + [c for c in index.entries(Coverage) if about_patient(c.beneficiary, c)]
        )
        supporting = [index.resolve(ref, container=request) for ref in request.supportingInfo or []]
        documents = _unique(
            [d for d in supporting if isinstance(d, DocumentReference)]
            + [d for d in index.entries(DocumentReference) if about_patient(d.subject, d)]
        )
        return cls(
            source=source,
            bundle=bundle,
            service_request=request,
            patient=patient,
            requester=requester,
            performer=performer,
            coverage=coverage,
            documents=documents,
            eligibility=tuple(
                e for e in index.entries(CoverageEligibilityResponse) if about_patient(e.patient, e)
            ),
            claim_responses=tuple(
                r for r in index.entries(ClaimResponse) if about_patient(r.patient, r)
            ),
            tasks=tuple(index.entries(Task)),
            authored_on=fhir_date(request.authoredOn),
            specialty=concept_label(request.performerType) or concept_label(request.code),
            payer_ids=_payer_ids(index, coverage),
            index=index,
            service_request_json=MappingProxyType(
                request.model_dump(mode="json", exclude_none=True)
            ),
        )

    @property
    def authorization_required(self) -> bool:
        """True when a CoverageEligibilityResponse marks an item ``authorizationRequired``."""
        return bool(self.authorization_sources())

    def authorization_sources(self) -> tuple[CoverageEligibilityResponse, ...]:
        """The (not cancelled) eligibility responses that require prior authorisation."""
        return tuple(
            response
            for response in self.eligibility
            if response.status not in _VOID
            and any(
                item.authorizationRequired
                for insurance in response.insurance or []
                for item in insurance.item or []
            )
        )

    @property
    def pre_auth_refs(self) -> tuple[str, ...]:
        """``ClaimResponse.preAuthRef`` of every ClaimResponse that is not cancelled."""
        return tuple(
            r.preAuthRef for r in self.claim_responses if r.preAuthRef and r.status not in _VOID
        )

    def demographics(self) -> Demographics:
        """The patient's demographics, with member id and payer from the first Coverage."""
        return Demographics.from_patient(self.patient, self.coverage[0] if self.coverage else None)

    def resolve(
        self, reference: Reference | None, *, container: Resource | None = None
    ) -> Resource | None:
        """The Bundle resource ``reference`` points to (see :class:`BundleIndex`), or None."""
        return self.index.resolve(reference, container=container)

    def path_of(self, resource: Resource) -> str | None:
        """Where ``resource`` sits in the Bundle, e.g. ``entry[3].resource``."""
        return self.index.path_of(resource)

    def document_key(self, doc: DocumentReference) -> str:
        """A stable key for ``doc``: its id, else its entry's fullUrl, else its JSON path.

        This is the key of the ``classified`` mapping of the documents agent.
        """
        return doc.id or self.index.full_url_of(doc) or self.index.path_of(doc) or "document"


def _referral_request(index: BundleIndex, source: str) -> ServiceRequest:
    candidates = [
        r
        for r in index.entries(ServiceRequest)
        if r.intent in REFERRAL_INTENTS and r.status != "entered-in-error"
    ]
    if len(candidates) == 1:
        return candidates[0]
    intents = ", ".join(REFERRAL_INTENTS)
    if not candidates:
        raise FhirInputError(
            source,
            [FhirIssue("entry", f"no ServiceRequest with intent {intents}: no referral order")],
            hint='add the referral as a ServiceRequest entry with "intent": "order"',
        )
    where = ", ".join(index.path_of(r) or "?" for r in candidates)
    raise FhirInputError(
        source,
        [FhirIssue("entry", f"{len(candidates)} ServiceRequests could be the referral: {where}")],
        hint="a case Bundle carries one referral order: split the Bundle, or give the other "
        'requests intent "proposal" or status "entered-in-error"',
    )


def _subject(index: BundleIndex, request: ServiceRequest, source: str) -> Patient:
    patient = index.resolve(request.subject, container=request)
    if isinstance(patient, Patient):
        return patient
    where = f"{index.path_of(request)}.subject"
    shown = request.subject.reference or "an identifier-only reference"
    found = f"a {patient.get_resource_type()}" if patient is not None else "nothing in the Bundle"
    raise FhirInputError(
        source,
        [FhirIssue(where, f"{shown!r} resolves to {found}, not a Patient")],
        hint="add the Patient as an entry whose fullUrl, or resourceType/id, matches the reference",
    )


def _party(index: BundleIndex, reference: Reference | None, container: Resource) -> Party | None:
    found = index.resolve(reference, container=container)
    return found if isinstance(found, Practitioner | PractitionerRole | Organization) else None


def _unique(items: list[R]) -> tuple[R, ...]:
    seen: set[int] = set()
    kept: list[R] = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            kept.append(item)
    return tuple(kept)


def _payer_ids(index: BundleIndex, coverage: tuple[Coverage, ...]) -> tuple[str, ...]:
    ids: list[str] = []
    for cov in coverage:
        for payor in cov.payor or []:
            if payor.identifier is not None and payor.identifier.value:
                ids.append(payor.identifier.value)
            resolved = index.resolve(payor, container=cov)
            if isinstance(resolved, Organization):
                ids.extend(i.value for i in resolved.identifier or [] if i.value)
            if payor.reference:
                ids.append(payor.reference)
    return tuple(dict.fromkeys(ids))
