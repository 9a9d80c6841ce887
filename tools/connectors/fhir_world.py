"""A scenario's world on real FHIR servers: seed the bases, and play the referring office.

``carebound run SCENARIO --fhir-server URL`` means: the EHR at ``URL/ehr``, the payer at
``URL/payer``, referring offices' CDex endpoint at ``URL/office`` (the local test server in
``testing/fhir-server`` serves exactly these). Before the run, :func:`seed_world` posts the
scenario's world there as one transaction bundle per base (built and checked with the
``fhir.resources`` models); while it runs, a :class:`ReferringOffice` answers the CDex document
requests the run sends, as the scenario's reply scripts say.

Seeding is idempotent: every resource is written with ``PUT Type/id`` (its id from the scenario;
a resource without one gets an id derived from its content), and ``urn:uuid:`` references
between the world's resources are rewritten to ``Type/id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from carebound.tools.connectors._bundle import RunContext
from carebound.tools.connectors._errors import ConnectorError, ConnectorsConfigError
from carebound.tools.connectors._factory import ConfiguredConnectors
from carebound.tools.connectors._office_player import ReferringOffice
from carebound.tools.connectors._outreach import ReplyScript
from carebound.tools.connectors._world_spec import WorldSpec
from carebound.tools.connectors.config import (
    BearerAuth,
    ConnectorsConfig,
    FhirServerConfig,
    NoAuth,
    connectors_config,
)

__all__ = [
    "FhirBases",
    "ReferringOffice",
    "local_server_config",
    "local_server_connectors",
    "played_office",
    "seed_configured_world",
    "seed_world",
    "world_bundles",
]

_URN_UUID = "urn:uuid:"
_OFFICE_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Endpoint"})
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class FhirBases:
    """The three FHIR bases a scenario's world lives in."""

    ehr: str
    """The EHR's base URL."""
    payer: str
    """The payer's base URL."""
    office: str
    """The referring offices' CDex endpoint."""

    @classmethod
    def under(cls, root: str) -> FhirBases:
        """``root``/ehr, ``root``/payer and ``root``/office (the local test server's layout)."""
        stripped = root.rstrip("/")
        hint = "give the server's root URL, e.g. http://127.0.0.1:8090"
        try:
            netloc = urlsplit(stripped).netloc
        except ValueError:
            netloc = ""
        if "@" in netloc:  # never echoed: it may hold a password
            raise ConnectorError(
                "--fhir-server: a user or password in the URL is not accepted (it would be "
                "shown wherever the URL is)",
                hint=hint + "; a server that needs credentials goes in a connectors file "
                "(--connectors) with its auth",
            )
        if not stripped.startswith(("http://", "https://")) or not netloc:
            raise ConnectorError(f"--fhir-server {root!r} is not an http(s) URL", hint=hint)
        return cls(ehr=f"{stripped}/ehr", payer=f"{stripped}/payer", office=f"{stripped}/office")


def local_server_config(root: str, *, payer: bool = True) -> ConnectorsConfig:
    """The connectors file ``--fhir-server ROOT`` stands for: no auth, bases under ``root``;
    the office answers CDex for every contact (portal, fax, email: the scenarios' offices are
    reached by fax, and played on the CDex endpoint), the payer searches by subscriber id (the
    test server has R5's parameter), and the ERP is the simulated one (see ``ErpConfig``).
    ``payer=False`` leaves the payer out (a scenario with no payer world: "no payer connected",
    as on the simulator)."""
    bases = FhirBases.under(root)
    data: dict[str, Any] = {
        "ehr": {"base_url": bases.ehr},
        "office": {"cdex": {"base_url": bases.office, "channels": ["portal", "fax", "email"]}},
        "erp": {"provider": "simulated"},
    }
    if payer:
        data["payer"] = {"base_url": bases.payer, "subscriber_id_search": True}
    return connectors_config(data)


def local_server_connectors(
    root: str, *, payer: bool = True, transport: httpx.BaseTransport | None = None
) -> ConfiguredConnectors:
    """The connectors factory of ``--fhir-server ROOT`` (:func:`local_server_config`);
    ``transport`` carries every FHIR call (default: pooled HTTP)."""
    return ConfiguredConnectors(local_server_config(root, payer=payer), transport=transport)


@contextmanager
def played_office(
    config: ConnectorsConfig, replies: Sequence[ReplyScript], *, run_id: str
) -> Iterator[ReferringOffice | None]:
    """The referring office of a scenario run, on the CDex endpoint the connectors file names
    (None when it names none): it answers the run's requests as ``replies`` script.

    Raises:
        ConnectorsConfigError: the endpoint asks for SMART auth (scenarios are for test servers).
    """
    cdex = config.office.cdex if config.office is not None else None
    if cdex is None:
        yield None
        return
    with _test_server_client("office", cdex) as http:
        yield ReferringOffice(str(cdex.base_url), replies, http, run_id=run_id)


def world_bundles(spec: WorldSpec) -> dict[str, dict[str, Any]]:
    """The world as FHIR transaction bundles: ``{"ehr": ..., "payer": ..., "office": ...}``.

    The office bundle holds the organisations and practitioners of the EHR's world (the
    referring side knows itself); a base with nothing to hold is left out.

    Raises:
        ConnectorError: a resource of the world is not valid FHIR R4 (names which and why).
    """
    references = _reference_map([*spec.ehr, *spec.payer])
    parts = {
        "ehr": spec.ehr,
        "payer": spec.payer,
        "office": [r for r in spec.ehr if r.get("resourceType") in _OFFICE_TYPES],
    }
    bundles: dict[str, dict[str, Any]] = {}
    for base, resources in parts.items():
        if not resources:
            continue
        entries = []
        for n, raw in enumerate(resources):
            resource = _checked(_rewritten(raw, references), where=f"world.{base}[{n}]")
            url = f"{resource['resourceType']}/{resource['id']}"
            entries.append({"resource": resource, "request": {"method": "PUT", "url": url}})
        bundle = Bundle.model_validate(
            {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        bundles[base] = bundle.model_dump(mode="json", exclude_none=True)
    return bundles


def seed_world(spec: WorldSpec, bases: FhirBases, http: httpx.Client) -> None:
    """Post the world's bundles to their bases (one transaction each).

    Raises:
        ConnectorError: a server refused a bundle (its OperationOutcome text quoted) or could
            not be reached.
    """
    targets = {"ehr": bases.ehr, "payer": bases.payer, "office": bases.office}
    for base, bundle in world_bundles(spec).items():
        _post_bundle(base, targets[base], bundle, http)


def seed_configured_world(config: ConnectorsConfig, run: RunContext, spec: WorldSpec) -> None:
    """Seed a scenario's world into the servers a connectors file names (the ``seed_world``
    that ``ConfiguredConnectors`` calls). Servers with no auth or a static bearer token only:
    worlds are for test servers.

    Raises:
        ConnectorsConfigError: the world has resources for a system the file leaves out, or a
            server asks for SMART auth.
        ConnectorError: a server refused a bundle or could not be reached.
    """
    del run  # every run of a scenario sees the same world: it is keyed by its resources' ids
    office = config.office.cdex if config.office is not None else None
    targets: dict[str, FhirServerConfig | None] = {
        "ehr": config.ehr,
        "payer": config.payer,
        "office": office,
    }
    for base, bundle in world_bundles(spec).items():
        server = targets[base]
        if server is None:
            if base == "office":
                continue  # the office's directory is a convenience, not part of the scenario
            raise ConnectorsConfigError(
                f"the scenario's world has {base} resources, but the connectors file has no "
                f"[{base}] section",
                hint=f"add [{base}] with the base_url of a test server to seed",
            )
        with _test_server_client(base, server) as http:
            _post_bundle(base, str(server.base_url), bundle, http)


def _test_server_client(base: str, server: FhirServerConfig) -> httpx.Client:
    """An HTTP client for a test server with no auth or a static bearer token."""
    headers = {}
    if isinstance(server.auth, BearerAuth):
        headers["Authorization"] = f"Bearer {server.auth.secret()}"
    elif not isinstance(server.auth, NoAuth):
        raise ConnectorsConfigError(
            f"{base}.auth: a scenario's world is seeded (and its office played) only on servers "
            "with no auth or a bearer token",
            hint="run scenarios against a test server (e.g. carebound run ... --fhir-server "
            "URL with testing/fhir-server)",
        )
    timeout = httpx.Timeout(server.timeouts.read_s, connect=server.timeouts.connect_s)
    return httpx.Client(headers=headers, timeout=timeout)


def _post_bundle(base: str, url: str, bundle: dict[str, Any], http: httpx.Client) -> None:
    try:
        response = http.post(
            url, json=bundle, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        )
    except httpx.TransportError as exc:
        raise ConnectorError(
            f"seeding the {base} world: {url} cannot be reached ({type(exc).__name__})",
            hint="start the server (see README 'Connect to your systems') or fix the URL",
        ) from None
    if response.status_code >= 300:
        raise ConnectorError(
            f"seeding the {base} world: {url} answered HTTP {response.status_code}: "
            f"{_outcome_text(response)}",
            hint="the server refused the scenario's resources; check them against FHIR R4",
        )


def _reference_map(resources: list[dict[str, Any]]) -> dict[str, str]:
    """``urn:uuid:<id>`` -> ``Type/<id>`` for every resource of the world."""
    mapping = {}
    for resource in resources:
        kind, rid = resource.get("resourceType"), resource.get("id") or _content_id(resource)
        mapping[f"{_URN_UUID}{rid}"] = f"{kind}/{rid}"
    return mapping


def _rewritten(resource: Mapping[str, Any], references: Mapping[str, str]) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: references.get(item, item)
                if key == "reference" and isinstance(item, str)
                else walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    result: dict[str, Any] = walk(dict(resource))
    result.setdefault("id", _content_id(resource))
    return result


def _content_id(resource: Mapping[str, Any]) -> str:
    """A stable id for a resource given without one (FHIR ids: 64 characters at most)."""
    canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"))
    return "w" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _checked(resource: dict[str, Any], *, where: str) -> dict[str, Any]:
    kind = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except KeyError:
        raise ConnectorError(
            f"{where}: unknown FHIR resourceType {kind!r}", hint="use an R4 resource type"
        ) from None
    try:
        checked = model.model_validate(resource)
    except ValueError as exc:
        raise ConnectorError(
            f"{where} ({kind}/{resource.get('id')}) is not valid FHIR R4: {exc}",
            hint="fix the resource in the scenario's bundle",
        ) from None
    return dict(checked.model_dump(mode="json", exclude_none=True))


def _outcome_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    issues = body.get("issue") if isinstance(body, dict) else None
    if not isinstance(issues, list):
        return response.text[:300]
    texts = []
    for issue in issues:
        details = (issue.get("details") or {}).get("text") or issue.get("diagnostics") or ""
        where = ", ".join(issue.get("expression") or [])
        texts.append(f"{details} ({where})" if where else str(details))
    return "; ".join(texts)
