"""How carebound proves who it is to a FHIR server: nothing, a static bearer token, or SMART
Backend Services.

Each is an ``httpx.Auth``, so one implementation serves the sync and the async client, and
the token request goes through the same client (its transport, timeouts and proxy).

SMART Backend Services (HL7 SMART App Launch 2, "Backend Services"; what Epic and Oracle Health
expose for system access): the client signs a short JWT assertion with its private key (RS384
or ES384, ``kid`` naming the key in the JWKS registered with the server), posts it to the token
endpoint with ``grant_type=client_credentials``, and gets a short-lived bearer token. The token
is cached until its expiry minus a skew; a 401 from the FHIR server drops it and the request is
sent once more with a fresh one. JWTs are made with PyJWT (``pyjwt[crypto]``), a well-kept
library with typed signing for both algorithms.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Literal

import httpx
import jwt

from carebound.tools.connectors._errors import ConnectorAuthError

SigningAlgorithm = Literal["RS384", "ES384"]
"""The JWT signing algorithms SMART Backend Services requires servers to support."""

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""The OAuth ``client_assertion_type`` of a JWT client assertion (RFC 7523)."""

ASSERTION_LIFETIME_SECONDS = 300
"""How long a client assertion is valid: SMART allows at most five minutes."""


class BearerToken(httpx.Auth):
    """A static bearer token (an API key or a token issued out of band).

    Args:
        token: the token, sent as ``Authorization: Bearer <token>``.
    """

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ConnectorAuthError(
                "bearer auth: the token is empty",
                hint="set the token in the connectors file or its environment variable",
            )
        self._header = f"Bearer {token.strip()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send."""
        request.headers["Authorization"] = self._header
        yield request


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services: a token from a signed JWT assertion, cached until it expires.

    Args:
        client_id: the client id the server registered (``iss`` and ``sub`` of the assertion).
        private_key: the PEM private key whose public half the server holds (in the JWKS).
        key_id: the ``kid`` of that key in the JWKS (SMART servers pick the key by it; None
            leaves it out, for a server that holds a single key for the client).
        scope: the scopes to ask for, e.g. ``"system/Patient.read system/Task.write"``.
        token_url: the token endpoint; when None it is discovered once from
            ``<fhir_base>/.well-known/smart-configuration``.
        fhir_base: the FHIR base URL (only needed for discovery).
        algorithm: ``RS384`` (an RSA key) or ``ES384`` (a P-384 EC key).
        skew_seconds: a token is renewed this long before it expires.
        clock: seconds since the epoch, for the token cache's expiry (tests pass a fake
            clock; assertions are always stamped with the real time, as servers check it).
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        client_id: str,
        private_key: str | bytes,
        key_id: str | None,
        scope: str,
        token_url: str | None = None,
        fhir_base: str | None = None,
        algorithm: SigningAlgorithm = "RS384",
        skew_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token_url is None and fhir_base is None:
            raise ConnectorAuthError(
                "SMART auth: neither a token URL nor a FHIR base to discover it from",
                hint="set auth.token_url, or the system's base_url",
            )
        self.client_id = client_id
        self.key_id = key_id
        self.scope = scope
        self.algorithm = algorithm
        self._key = private_key
        self._token_url = token_url
        self._fhir_base = fhir_base
        self._skew = skew_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self.tokens_fetched = 0
        """How many tokens this auth has obtained (for tests and metrics)."""
        self.assertion()  # a key that cannot sign fails here, at configuration time

    def assertion(self) -> str:
        """A fresh signed client assertion (a JWT valid for five minutes).

        Raises:
            ConnectorAuthError: the key cannot sign with the configured algorithm.
        """
        now = int(time.time())  # the server checks it against its own clock
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self._token_url or f"{self._fhir_base}/.well-known/smart-configuration",
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        try:
            return jwt.encode(
                claims,
                self._key,
                algorithm=self.algorithm,
                headers={"typ": "JWT", **({"kid": self.key_id} if self.key_id else {})},
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConnectorAuthError(
                f"SMART auth: cannot sign a {self.algorithm} assertion with the private key "
                f"({type(exc).__name__})",
                hint="RS384 needs an RSA private key, ES384 a P-384 EC private key, in PEM",
            ) from None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with a cached token (fetching one first); on 401, once more with a new one."""
        token = self._cached()
        if token is None:
            token = yield from self._fetch()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401:
            self._drop(token)
            fresh = yield from self._fetch()
            request.headers["Authorization"] = f"Bearer {fresh.value}"
            yield request

    def _cached(self) -> _Token | None:
        with self._lock:
            token = self._token
        if token is None or token.expires_at - self._skew <= self._clock():
            return None
        return token

    def _drop(self, token: _Token) -> None:
        with self._lock:
            if self._token is token:
                self._token = None

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, _Token]:
        if self._token_url is None:
            discovery = yield httpx.Request(
                "GET",
                f"{self._fhir_base}/.well-known/smart-configuration",
                headers={"Accept": "application/json"},
            )
            self._token_url = _token_endpoint(discovery)
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        response = yield httpx.Request(
            "POST", self._token_url, data=form, headers={"Accept": "application/json"}
        )
        token = self._parse(response)
        with self._lock:
            self._token = token
            self.tokens_fetched += 1
        return token

    def _parse(self, response: httpx.Response) -> _Token:
        body = _json_object(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            error = body.get("error", f"HTTP {response.status_code}")
            detail = body.get("error_description")
            said = f"{error} ({detail})" if isinstance(detail, str) else f"{error}"
            raise ConnectorAuthError(
                f"SMART auth: the token endpoint {self._token_url} refused client "
                f"{self.client_id!r}: {said}",
                hint="check the client id, that the server holds the public key under kid "
                f"{self.key_id!r} (JWKS), the algorithm ({self.algorithm}) and the scopes asked",
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        return _Token(value=str(body["access_token"]), expires_at=self._clock() + lifetime)


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _token_endpoint(response: httpx.Response) -> str:
    endpoint = _json_object(response).get("token_endpoint")
    if response.status_code != 200 or not isinstance(endpoint, str):
        raise ConnectorAuthError(
            f"SMART auth: no token_endpoint in {response.request.url} "
            f"(HTTP {response.status_code})",
            hint="set auth.token_url in the connectors file",
        )
    return endpoint
