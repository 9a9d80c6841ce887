"""The payer: coverage lookup, eligibility (does this service need prior authorisation?) and the
prior-authorisation decision.

:class:`PayerConnector` is the interface; :class:`SimulatedPayer` answers from FHIR resources
seeded into Redis (Coverage, CoverageEligibilityResponse, ClaimResponse and whatever they
reference, e.g. the beneficiary Patient).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import redis
from pydantic import BaseModel, ConfigDict

from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource
from carebound.tools.connectors._redis_state import ConnectorState, EffectRecord, WriteBatch

REVIEW_ACTION_URL = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
REVIEW_ACTION_CODE_URL = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode"
)
APPROVED_REVIEW_ACTIONS = frozenset({"A1", "A2", "A6"})
"""X12 306 review action codes that grant an authorisation: certified in total, certified
partial, modified."""


class EligibilityItem(BaseModel):
    """One benefit line of an eligibility response."""

    model_config = ConfigDict(frozen=True)

    codes: list[str]
    """Codes of its category and product/service (any system)."""
    display: str | None
    authorization_required: bool
    """The payer requires prior authorisation for this benefit."""


class EligibilityResult(BaseModel):
    """The payer's eligibility answer for one member."""

    model_config = ConfigDict(frozen=True)

    member_id: str
    found: bool
    """A Coverage with this member id exists; when False every other answer is empty."""
    coverage_id: str | None = None
    payer: str | None = None
    """The payor reference (or its display)."""
    in_force: bool = False
    """Coverage is in force (``insurance.inforce``, else Coverage.status is active)."""
    authorization_required: bool = False
    """Prior authorisation is required (for ``service_code`` when one was asked about)."""
    items: list[EligibilityItem] = []
    response_id: str | None = None
    """The CoverageEligibilityResponse this answer comes from."""


class PayerConnector(Protocol):
    """What agents may ask a payer (all reads)."""

    def connected(self) -> bool:
        """Whether a payer answers at all. False: nothing can be verified with the payer, which
        is not the same fact as the payer having no such member."""
        ...

    def coverage(self, member_id: str) -> FhirResource | None:
        """The Coverage of a member id, or None when the payer has no such member."""
        ...

    def beneficiary(self, coverage: FhirResource) -> FhirResource | None:
        """The Patient the payer holds as the beneficiary of ``coverage`` (its demographics), or
        None when the payer shares none."""
        ...

    def eligibility(self, member_id: str, service_code: str | None = None) -> EligibilityResult:
        """Whether the member is covered and whether prior authorisation is required."""
        ...

    def prior_auth(self, claim_ref: str) -> str | None:
        """The authorisation number granted for a prior-auth Claim, or None (pending/denied)."""
        ...


class SimulatedPayer:
    """A payer that answers from FHIR resources seeded into Redis.

    Args:
        client: a sync Redis client.
        run_id: the run whose world this is.
        prefix: the key prefix.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._state = ConnectorState(client, run_id, prefix=prefix, system="payer")

    def connected(self) -> bool:
        """True when the world was seeded with any payer resource (a payer to ask)."""
        return self._state.hget(self._meta(), "connected") is not None

    def beneficiary(self, coverage: FhirResource) -> FhirResource | None:
        """The beneficiary Patient of ``coverage``: contained, or among the payer's Patients."""
        wanted = _reference(coverage.get("beneficiary"))
        if wanted is None:
            return None
        if wanted.startswith("#"):
            contained = coverage.get("contained") or []
            return next((dict(r) for r in contained if f"#{r.get('id')}" == wanted), None)
        return next((p for p in self._all("Patient") if f"Patient/{p['id']}" == wanted), None)

    def coverage(self, member_id: str) -> FhirResource | None:
        """The Coverage whose ``subscriberId``, ``identifier`` or beneficiary Patient's
        identifier equals ``member_id`` (exactly, as a payer matches), or None."""
        return coverage_for(member_id, self._all("Coverage"), self._all("Patient"))

    def eligibility(self, member_id: str, service_code: str | None = None) -> EligibilityResult:
        """Answer from the latest CoverageEligibilityResponse for the member's Coverage.

        Args:
            member_id: the member id on the insurance card.
            service_code: a category or product/service code; when given, only benefit lines
                with that code decide ``authorization_required``.

        Raises:
            ConnectorError: the member has coverage but no eligibility response was seeded.
        """
        coverage = self.coverage(member_id)
        if coverage is None:
            return EligibilityResult(member_id=member_id, found=False)
        responses = self._all("CoverageEligibilityResponse")
        return eligibility_answer(member_id, coverage, responses, service_code)

    def prior_auth(self, claim_ref: str) -> str | None:
        """The authorisation number for the prior-auth Claim ``claim_ref``, or None.

        ``claim_ref`` may be the Claim reference (``Claim/<id>`` or its id) the ClaimResponse's
        ``request`` names, or a business identifier value shared by Claim and ClaimResponse
        (PAS trace number). Returns ``ClaimResponse.preAuthRef`` or the PAS review-action
        number, unless the review action denies or pends (None), or no response exists yet.
        """
        return authorisation_number(self._all("ClaimResponse"), claim_ref)

    def claim_response(self, claim_ref: str) -> FhirResource | None:
        """The ClaimResponse answering ``claim_ref`` (matched as in :meth:`prior_auth`)."""
        return next((r for r in self._all("ClaimResponse") if answers_claim(r, claim_ref)), None)

    def effects(self) -> list[EffectRecord]:
        """Effects applied by the payer: none, every call is a read."""
        return self._state.effects()

    def attempts(self) -> int:
        """Effectful calls that came in: none, every call is a read."""
        return self._state.attempts()

    def seed(self, batch: WriteBatch, resources: Iterable[FhirResource]) -> None:
        """Add writes that store already-validated ``resources`` to a seeding batch; any
        resource at all makes the payer ``connected``."""
        resources = list(resources)
        if resources:
            batch.op("HSET", self._meta(), "connected", "1")
        for resource in resources:
            key = self._state.key("res", resource["resourceType"])
            batch.op("HSET", key, resource["id"], json.dumps(resource))

    def _meta(self) -> str:
        return self._state.key("meta")

    def _all(self, resource_type: str) -> list[FhirResource]:
        raws = self._state.hvals(self._state.key("res", resource_type))
        return sorted((json.loads(raw) for raw in raws), key=lambda r: str(r.get("id", "")))


def coverage_for(
    member_id: str, coverages: Iterable[FhirResource], patients: Iterable[FhirResource]
) -> FhirResource | None:
    """The first of ``coverages`` whose ``subscriberId`` or ``identifier`` equals
    ``member_id``, or whose beneficiary is one of ``patients`` carrying it as an identifier
    (exact match, as a payer matches)."""
    members = {f"Patient/{p['id']}" for p in patients if _has_identifier(p, member_id)}
    for coverage in coverages:
        if coverage.get("subscriberId") == member_id or _has_identifier(coverage, member_id):
            return coverage
        if _reference(coverage.get("beneficiary")) in members:
            return coverage
    return None


def eligibility_answer(
    member_id: str,
    coverage: FhirResource,
    responses: Iterable[FhirResource],
    service_code: str | None = None,
) -> EligibilityResult:
    """The eligibility answer for ``member_id`` from the latest of ``responses`` (any
    CoverageEligibilityResponses) whose insurance names ``coverage``.

    Raises:
        ConnectorError: none of ``responses`` is about ``coverage``.
    """
    coverage_ref = f"Coverage/{coverage['id']}"
    about = [
        r
        for r in responses
        if any(_reference(ins.get("coverage")) == coverage_ref for ins in r.get("insurance", []))
    ]
    if not about:
        raise ConnectorError(
            f"payer: no CoverageEligibilityResponse for {coverage_ref}",
            hint="seed one whose insurance.coverage references that Coverage",
        )
    response = max(about, key=lambda r: (str(r.get("created", "")), str(r["id"])))
    insurance = [
        ins
        for ins in response.get("insurance", [])
        if _reference(ins.get("coverage")) == coverage_ref
    ]
    items = [_item(raw) for ins in insurance for raw in ins.get("item", [])]
    relevant = [i for i in items if service_code is None or service_code in i.codes]
    inforce = [ins["inforce"] for ins in insurance if isinstance(ins.get("inforce"), bool)]
    payors = coverage.get("payor", [])
    return EligibilityResult(
        member_id=member_id,
        found=True,
        coverage_id=str(coverage["id"]),
        payer=_reference(payors[0]) if payors else None,
        in_force=any(inforce) if inforce else coverage.get("status") == "active",
        authorization_required=any(i.authorization_required for i in relevant),
        items=items,
        response_id=str(response["id"]),
    )


def authorisation_number(responses: Iterable[FhirResource], claim_ref: str) -> str | None:
    """The authorisation number granted by the first of ``responses`` (ClaimResponses) that
    answers ``claim_ref``, or None (pending, denied, no answer yet); see
    :meth:`SimulatedPayer.prior_auth`."""
    for response in responses:
        if response.get("use") != "preauthorization" or response.get("outcome") == "error":
            continue
        if not answers_claim(response, claim_ref):
            continue
        actions = _review_actions(response)
        if actions and not any(code in APPROVED_REVIEW_ACTIONS for code, _ in actions):
            return None
        pre_auth_ref = response.get("preAuthRef")
        if isinstance(pre_auth_ref, str):
            return pre_auth_ref
        numbers = [n for code, n in actions if code in APPROVED_REVIEW_ACTIONS and n]
        return numbers[0] if numbers else None
    return None


def reference_of(value: Any) -> str | None:
    """A Reference's ``Type/id`` (absolute and versioned references reduced), or its display."""
    return _reference(value)


def _reference(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    reference = value.get("reference")
    if isinstance(reference, str):
        # Absolute and versioned references reduce to "Type/id".
        return "/".join(reference.split("/_history/")[0].split("/")[-2:])
    display = value.get("display")
    return display if isinstance(display, str) else None


def _has_identifier(resource: Mapping[str, Any], value: str) -> bool:
    return any(i.get("value") == value for i in resource.get("identifier", []))


def _codes(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [c["code"] for c in concept.get("coding", []) if isinstance(c.get("code"), str)]


def _item(raw: Mapping[str, Any]) -> EligibilityItem:
    display = raw.get("name") or raw.get("description")
    return EligibilityItem(
        codes=_codes(raw.get("category")) + _codes(raw.get("productOrService")),
        display=display if isinstance(display, str) else None,
        authorization_required=raw.get("authorizationRequired") is True,
    )


def answers_claim(response: Mapping[str, Any], claim_ref: str) -> bool:
    """Whether ClaimResponse ``response`` answers ``claim_ref`` (its request reference, the
    request's identifier, or a shared business identifier)."""
    wanted = claim_ref if "/" in claim_ref else f"Claim/{claim_ref}"
    request = response.get("request")
    if _reference(request) == wanted:
        return True
    if isinstance(request, Mapping):
        ident = request.get("identifier")
        if isinstance(ident, Mapping) and ident.get("value") == claim_ref:
            return True
    return _has_identifier(response, claim_ref)


def _review_actions(response: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(X12 306 code, authorisation number) of each PAS reviewAction in the response."""
    adjudications = list(response.get("adjudication", []))
    for item in response.get("item", []):
        adjudications.extend(item.get("adjudication", []))
    found: list[tuple[str, str | None]] = []
    for adjudication in adjudications:
        for ext in adjudication.get("extension", []):
            if ext.get("url") != REVIEW_ACTION_URL:
                continue
            parts = {sub.get("url"): sub for sub in ext.get("extension", [])}
            number = parts.get("number", {}).get("valueString")
            for code in _codes(parts.get(REVIEW_ACTION_CODE_URL, {}).get("valueCodeableConcept")):
                found.append((code, number if isinstance(number, str) else None))
    return found


def _conforms(connector: SimulatedPayer) -> PayerConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
