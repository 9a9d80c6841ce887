"""The payer: coverage lookup, eligibility (does this service need prior authorisation?) and the
prior-authorisation decision.

:class:`PayerConnector` is the interface. The functions below read a payer's FHIR answers
(Coverage, CoverageEligibilityResponse, ClaimResponse) the same way for every implementation:
the REST payer (``fhir_rest``) and the simulated one (``simulated``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource

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
