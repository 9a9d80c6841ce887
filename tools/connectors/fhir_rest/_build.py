"""Build the REST connectors from the connectors file's sections (``EhrConfig``,
``PayerConfig``): base URL, auth (none, bearer, SMART), and, given the breaker store (Redis),
timeouts, retries and the circuit breaker (``Resilience``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx

from carebound.state.breaker import BreakerStore
from carebound.tools.connectors._errors import ConnectorsConfigError
from carebound.tools.connectors._resilience import Resilience
from carebound.tools.connectors.config import Auth, EhrConfig, FhirServerConfig, PayerConfig
from carebound.tools.connectors.fhir_rest._auth import BearerToken, SmartBackendAuth
from carebound.tools.connectors.fhir_rest._client import FhirRestClient
from carebound.tools.connectors.fhir_rest._ehr import RestEHR
from carebound.tools.connectors.fhir_rest._payer import RestPayer


def build_ehr(
    config: EhrConfig,
    *,
    breakers: BreakerStore | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> RestEHR:
    """The EHR connector the ``[ehr]`` section describes.

    Args:
        breakers: the circuit breakers' store; None: every call is tried once, no breaker.
        transport: an ``httpx`` transport (a proxy in tests); default: pooled HTTP.
        clock: the breaker's time source: the runs' clock (a scenario's virtual clock), so the
            breaker's cool-down and the runs' retry timers agree; default: the wall clock.

    Raises:
        ConnectorsConfigError: the SMART private key cannot be read.
        ConnectorAuthError: the key cannot sign with the configured algorithm.
    """
    return RestEHR(build_client(config, "ehr", breakers=breakers, transport=transport, clock=clock))


def build_payer(
    config: PayerConfig,
    *,
    breakers: BreakerStore | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> RestPayer:
    """The payer connector the ``[payer]`` section describes (arguments as :func:`build_ehr`)."""
    client = build_client(config, "payer", breakers=breakers, transport=transport, clock=clock)
    return RestPayer(client, subscriber_id_search=config.subscriber_id_search)


def build_client(
    config: FhirServerConfig,
    system: str,
    *,
    breakers: BreakerStore | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> FhirRestClient:
    """A FHIR client for one configured server (arguments as :func:`build_ehr`)."""
    base_url = str(config.base_url).rstrip("/")
    resilience = None
    if breakers is not None:
        resilience = Resilience(
            system,
            breakers,
            timeouts=config.timeouts,
            retry=config.retry,
            breaker=config.breaker,
            clock=clock,
        )
    return FhirRestClient(
        base_url,
        system=system,
        auth=build_auth(config.auth, system=system, base_url=base_url),
        timeout=httpx.Timeout(config.timeouts.read_s, connect=config.timeouts.connect_s),
        transport=transport,
        resilience=resilience,
    )


def build_auth(auth: Auth, *, system: str, base_url: str) -> httpx.Auth | None:
    """The ``httpx.Auth`` of an ``auth`` section (None for ``kind = "none"``).

    Raises:
        ConnectorsConfigError: a SMART private key file cannot be read.
    """
    if auth.kind == "none":
        return None
    if auth.kind == "bearer":
        return BearerToken(auth.secret())
    try:
        key = auth.private_key_file.read_bytes()
    except OSError as exc:
        raise ConnectorsConfigError(
            f"[{system}.auth] private_key_file {auth.private_key_file}: cannot read it "
            f"({exc.strerror or exc})",
            hint="check the path and the file's permissions",
        ) from None
    return SmartBackendAuth(
        client_id=auth.client_id,
        private_key=key,
        key_id=auth.key_id,
        scope=" ".join(auth.scopes),
        token_url=str(auth.token_url),
        fhir_base=base_url,
        algorithm=auth.alg,
    )
