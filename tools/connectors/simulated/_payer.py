"""A simulated payer: answers from Coverage, CoverageEligibilityResponse and ClaimResponse
resources seeded into Redis under the run's hash tag (read as the REST payer reads a server's
answers: ``coverage_for``, ``eligibility_answer``, ``authorisation_number``)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors._fhir import FhirResource
from carebound.tools.connectors._payer import (
    EligibilityResult,
    PayerConnector,
    answers_claim,
    authorisation_number,
    coverage_for,
    eligibility_answer,
    reference_of,
)
from carebound.tools.connectors.simulated._redis_state import (
    ConnectorState,
    EffectRecord,
    WriteBatch,
)


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
        wanted = reference_of(coverage.get("beneficiary"))
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


def _conforms(connector: SimulatedPayer) -> PayerConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
