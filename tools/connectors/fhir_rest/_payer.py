"""A payer over FHIR R4 REST: :class:`RestPayer` implements ``PayerConnector`` (all reads).

Finding a member's Coverage: FHIR R4 has no search parameter on ``Coverage.subscriberId`` (R5
adds ``subscriberid``), so the payer is asked, in order, for ``Coverage?identifier=<id>`` (where
payers following CARIN/PDex put the member id), for the Patients carrying the member id as an
identifier and their Coverage (``beneficiary``), and, when the connectors file says the server
has it (``subscriber_id_search``), for ``Coverage?subscriberid=<id>``. Every candidate is then
checked exactly as the simulated payer checks (``coverage_for``), so a lenient server that
ignores a parameter cannot hand back someone else's Coverage.
"""

from __future__ import annotations

from carebound.tools.connectors._fhir import FhirResource
from carebound.tools.connectors._payer import (
    EligibilityResult,
    authorisation_number,
    coverage_for,
    eligibility_answer,
    reference_of,
)
from carebound.tools.connectors.fhir_rest._client import FhirRestClient


class RestPayer:
    """A payer reached over FHIR R4 REST.

    Args:
        client: the FHIR client of the payer's base URL.
        subscriber_id_search: the server supports ``Coverage?subscriberid=`` (an R5 parameter,
            or a custom SearchParameter on an R4 server).
    """

    def __init__(self, client: FhirRestClient, *, subscriber_id_search: bool = False) -> None:
        self.client = client
        self.subscriber_id_search = subscriber_id_search

    def connected(self) -> bool:
        """A configured payer is connected: its answers (or its outage) are facts."""
        return True

    def coverage(self, member_id: str) -> FhirResource | None:
        """The member's Coverage, or None when the payer has no such member."""
        coverages = self.client.search("Coverage", {"identifier": member_id})
        patients = self.client.search("Patient", {"identifier": member_id})
        for patient in patients:
            beneficiary = f"Patient/{patient['id']}"
            coverages += self.client.search("Coverage", {"beneficiary": beneficiary})
        if self.subscriber_id_search:
            coverages += self.client.search("Coverage", {"subscriberid": member_id})
        unique = {str(c["id"]): c for c in coverages}
        return coverage_for(member_id, [unique[k] for k in sorted(unique)], patients)

    def beneficiary(self, coverage: FhirResource) -> FhirResource | None:
        """The beneficiary Patient: contained in the Coverage, or read from the payer."""
        wanted = reference_of(coverage.get("beneficiary"))
        if wanted is None:
            return None
        if wanted.startswith("#"):
            contained = coverage.get("contained") or []
            return next((dict(r) for r in contained if f"#{r.get('id')}" == wanted), None)
        kind, _, ident = wanted.partition("/")
        if kind != "Patient" or not ident:
            return None
        return self.client.read("Patient", ident)

    def eligibility(self, member_id: str, service_code: str | None = None) -> EligibilityResult:
        """The payer's latest CoverageEligibilityResponse for the member's Coverage (searched
        by the beneficiary, as R4 has no ``coverage`` parameter on it).

        Raises:
            ConnectorError: the member has coverage but the payer holds no eligibility answer.
        """
        coverage = self.coverage(member_id)
        if coverage is None:
            return EligibilityResult(member_id=member_id, found=False)
        patient = reference_of(coverage.get("beneficiary"))
        params = {"patient": patient} if patient and not patient.startswith("#") else {}
        responses = self.client.search("CoverageEligibilityResponse", params)
        return eligibility_answer(member_id, coverage, responses, service_code)

    def prior_auth(self, claim_ref: str) -> str | None:
        """The authorisation number the payer granted for a prior-auth Claim, or None."""
        return authorisation_number(self.claim_responses(claim_ref), claim_ref)

    def claim_responses(self, claim_ref: str) -> list[FhirResource]:
        """The payer's ClaimResponses for ``claim_ref`` (by request, else by identifier)."""
        request = claim_ref if "/" in claim_ref else f"Claim/{claim_ref}"
        found = self.client.search("ClaimResponse", {"request": request})
        if not found:
            found = self.client.search("ClaimResponse", {"identifier": claim_ref})
        return found
