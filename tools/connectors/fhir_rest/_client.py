"""A small FHIR R4 REST client on ``httpx``: read, search, conditional create, versioned update.

Why ``httpx`` directly and not ``fhirpy`` (checked against fhirpy 2.3): fhirpy's sync client
sends every call through a new ``requests.request`` (no connection pool, no transport to put a
fault-injecting proxy or a test transport behind), its async client is a second stack on
``aiohttp``, it maps every 412 to ``MultipleResourcesFound`` (so a lost ``If-Match`` race and an
ambiguous conditional create look alike), and its update sends no ``If-Match``. carebound needs
exactly those headers, per-phase timeouts, a transport to send through the resilience layer
(``Resilience.send``: retries, the Redis circuit breaker), and ``httpx.Auth`` for SMART tokens
(the same API sync and async). The FHIR part is small: resources are validated with
``fhir.resources`` (R4B) models on the way out and on the way in, and the errors tell a transient
failure (``SystemUnavailableError``: the run waits) from a refusal (``SystemRefusedError``: a
tool error) from a lost ``If-Match`` race (``VersionConflictError``: held again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from fhir.resources.R4B.resource import Resource

from carebound.tools.connectors._errors import (
    ConnectorError,
    ResourceNotFoundError,
    SystemRefusedError,
    SystemUnavailableError,
    VersionConflictError,
)
from carebound.tools.connectors._fhir import FhirResource, validate_resource
from carebound.tools.connectors._resilience import (
    TRANSIENT_STATUS,
    Resilience,
    outcome_code,
    retry_after_s,
)

FHIR_JSON = "application/fhir+json"
"""The FHIR JSON media type, sent and accepted."""

MAX_PAGES = 50
"""A search follows at most this many ``next`` links (a runaway server cannot loop us)."""

ModelT = TypeVar("ModelT", bound=Resource)


class _PreconditionFailedError(Exception):
    """HTTP 412: a conditional request's precondition did not hold (sorted out by the caller)."""


class FhirRestClient:
    """One FHIR R4 server (a base URL), spoken to over HTTP.

    Args:
        base_url: the FHIR base, e.g. ``https://ehr.example.org/fhir/R4``.
        system: the system's name in errors (``ehr``, ``payer``).
        auth: an ``httpx.Auth`` (``BearerToken``, ``SmartBackendAuth``) or None.
        timeout: seconds per request phase, or an ``httpx.Timeout``.
        transport: an ``httpx`` transport (tests, proxies); default: a pooled HTTP transport.
        resilience: retries with backoff, per-call timeouts and the system's circuit breaker
            (``Resilience``); without it every call is tried once.
    """

    def __init__(
        self,
        base_url: str,
        *,
        system: str,
        auth: httpx.Auth | None = None,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.BaseTransport | None = None,
        resilience: Resilience | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.system = system
        self._resilience = resilience
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON},
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> FhirRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> FhirResource:
        """``GET [base]/Type/id``, validated; ``meta.versionId`` is filled from the ETag when
        the server left it out.

        Raises:
            ResourceNotFoundError: 404 or 410.
        """
        response = self._send("GET", f"{resource_type}/{id}", what=f"{resource_type}/{id}")
        return self._resource(response, f"read {resource_type}/{id}")

    def read_as(self, model: type[ModelT], id: str) -> ModelT:
        """Read a resource as its ``fhir.resources`` model (e.g. ``Patient``)."""
        return model.model_validate(self.read(model.get_resource_type(), id))

    def search(self, resource_type: str, params: Mapping[str, str]) -> list[FhirResource]:
        """``GET [base]/Type?params``, following ``next`` links; the matches only (not
        ``_include``\\ d resources), each validated."""
        found: list[FhirResource] = []
        url: str | None = resource_type
        query: Mapping[str, str] | None = params
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            response = self._send("GET", url, params=query, what=f"search {resource_type}")
            bundle = _json(response, f"{self.system} search {resource_type}")
            for n, entry in enumerate(bundle.get("entry") or []):
                mode = (entry.get("search") or {}).get("mode", "match")
                resource = entry.get("resource")
                if mode == "match" and isinstance(resource, Mapping):
                    where = f"{self.system} search {resource_type} entry #{n}"
                    found.append(validate_resource(resource, where=where))
            url, query = _next_link(bundle), None
        raise ConnectorError(
            f"{self.system}: search {resource_type} returned more than {MAX_PAGES} pages",
            hint="narrow the search parameters",
        )

    def search_as(self, model: type[ModelT], params: Mapping[str, str]) -> list[ModelT]:
        """Search and return ``fhir.resources`` models."""
        return [model.model_validate(r) for r in self.search(model.get_resource_type(), params)]

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource: Mapping[str, Any], *, if_none_exist: str | None) -> FhirResource:
        """``POST [base]/Type``; with ``if_none_exist`` (a search query, e.g.
        ``identifier=sys|val``) the server creates nothing when a match exists and returns it.

        Raises:
            FhirValidationError: the resource is not valid FHIR R4 (nothing is sent).
            ConnectorError: the server refused it, or several resources match ``if_none_exist``.
        """
        data = validate_resource(resource, where=f"{self.system} create")
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist is not None:
            headers["If-None-Exist"] = if_none_exist
        kind = data["resourceType"]
        try:
            response = self._send("POST", kind, json=data, headers=headers, what=f"create {kind}")
        except _PreconditionFailedError:
            raise ConnectorError(
                f"{self.system}: conditional create of {kind} matched more than one resource",
                hint="the effect identifier must be unique: look for duplicates on the server",
            ) from None
        if not response.content and "location" in response.headers:
            ref = _location_reference(response.headers["location"])
            return self.read(*ref)
        return self._resource(response, f"create {kind}")

    def update(self, resource: Mapping[str, Any], *, if_match: str | None) -> FhirResource:
        """``PUT [base]/Type/id`` with ``If-Match: W/"<if_match>"`` (optimistic locking).

        Raises:
            VersionConflictError: 412, the resource changed since version ``if_match``.
            FhirValidationError: the resource is not valid FHIR R4 (nothing is sent).
        """
        data = validate_resource(resource, where=f"{self.system} update")
        ref = f"{data['resourceType']}/{data['id']}"
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_match is not None:
            headers["If-Match"] = f'W/"{if_match}"'
        try:
            response = self._send("PUT", ref, json=data, headers=headers, what=f"update {ref}")
        except _PreconditionFailedError:
            raise VersionConflictError(
                f"{self.system}: {ref} changed since version {if_match} was read; "
                "nothing was written",
                hint="read it again and decide on the record as it is now",
                reference=ref,
                expected=if_match,
                current=None,
            ) from None
        if not response.content:
            return self.read(data["resourceType"], data["id"])
        return self._resource(response, f"update {ref}")

    # -- the wire ----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (through the resilience layer when there is one) and sort the
        answer: 2xx/3xx returned, 412 :class:`_PreconditionFailedError`, 404/410 not found,
        transient failures unavailable, any other 4xx/5xx refused."""
        request = self._http.build_request(method, url, params=params, json=json, headers=headers)
        if self._resilience is not None:
            try:
                response = self._resilience.send(self._http, request)
            except SystemRefusedError as exc:
                if exc.status == 412:
                    raise _PreconditionFailedError from None
                raise
        else:
            response = self._send_plain(request, what)
        if response.status_code in (404, 410):
            raise ResourceNotFoundError(
                f"{self.system}: {what}: not found (HTTP {response.status_code})",
                hint="check the id, or search by identifier first",
            )
        return response

    def _send_plain(self, request: httpx.Request, what: str) -> httpx.Response:
        """One try, no breaker: the same errors as the resilience layer raises."""
        try:
            response = self._http.send(request)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise SystemUnavailableError(
                f"{self.system}: {what} failed with {type(exc).__name__} ({self.base_url})",
                system=self.system,
                hint="check that the server is up and the base URL is right",
            ) from None
        status = response.status_code
        if status < 400 or status in (404, 410):
            return response
        if status == 412:
            raise _PreconditionFailedError
        if status in TRANSIENT_STATUS:
            wait = retry_after_s(response, dt.datetime.now(dt.UTC))
            raise SystemUnavailableError(
                f"{self.system}: {what}: HTTP {status} from {self.base_url}",
                system=self.system,
                retry_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait) if wait else None,
                hint="the system is busy or down; the call can be tried again later",
            )
        raise SystemRefusedError(
            f"{self.system}: {what} refused: HTTP {status}{outcome_code(response)}",
            system=self.system,
            status=status,
            hint="the request itself was refused; check its data and the client's permissions",
        )

    def _resource(self, response: httpx.Response, what: str) -> FhirResource:
        where = f"{self.system} {what}"
        data = validate_resource(_json(response, where), where=where)
        version = _etag_version(response.headers.get("etag"))
        meta = data.setdefault("meta", {})
        if version is not None and "versionId" not in meta:
            meta["versionId"] = version
        return data


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConnectorError(
            f"{what}: the server answered HTTP {response.status_code} without a FHIR JSON body",
            hint="check that the base URL points at a FHIR R4 server",
        )
    return body


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _etag_version(etag: str | None) -> str | None:
    if not etag:
        return None
    return etag.removeprefix("W/").strip('"') or None


def _location_reference(location: str) -> tuple[str, str]:
    parts = location.split("/_history/", maxsplit=1)[0].rstrip("/").split("/")
    return parts[-2], parts[-1]
