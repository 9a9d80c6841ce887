"""carebound.tools.connectors.fhir_rest: the EHR and the payer over FHIR R4 REST.

* :class:`FhirRestClient`: read, search, conditional create and versioned update on one FHIR
  base, over ``httpx`` (why not fhirpy: see ``_client``), validating with ``fhir.resources``.
* :class:`RestEHR` (an ``EHRConnector``) and :class:`RestPayer` (a ``PayerConnector``).
* :func:`build_ehr` / :func:`build_payer`: both from the connectors file's ``[ehr]`` and
  ``[payer]`` sections (``carebound.tools.connectors.config``).
* Auth: :class:`BearerToken` and :class:`SmartBackendAuth` (SMART Backend Services, a JWT
  assertion signed RS384 or ES384); no auth is ``None``.
* :func:`seed_world`: a scenario's world into the file's test servers
  (:func:`carebound.tools.connectors.fhir_world.seed_configured_world`).

Every write carries the effect ledger's key as an identifier (:data:`EFFECT_SYSTEM`) and is a
conditional create or an ``If-Match`` update, so a retried call never writes twice on the server.
"""

from carebound.tools.connectors.fhir_rest._auth import (
    CLIENT_ASSERTION_TYPE,
    BearerToken,
    SigningAlgorithm,
    SmartBackendAuth,
)
from carebound.tools.connectors.fhir_rest._build import (
    build_auth,
    build_client,
    build_ehr,
    build_payer,
)
from carebound.tools.connectors.fhir_rest._client import FhirRestClient
from carebound.tools.connectors.fhir_rest._ehr import (
    EFFECT_SYSTEM,
    RestEHR,
    effect_identifier,
    effect_search,
)
from carebound.tools.connectors.fhir_rest._payer import RestPayer
from carebound.tools.connectors.fhir_rest._seed import seed_world

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "EFFECT_SYSTEM",
    "BearerToken",
    "FhirRestClient",
    "RestEHR",
    "RestPayer",
    "SigningAlgorithm",
    "SmartBackendAuth",
    "build_auth",
    "build_client",
    "build_ehr",
    "build_payer",
    "effect_identifier",
    "effect_search",
    "seed_world",
]
