"""FHIR R4 checks shared by the connectors: validate a resource before it is stored.

``fhir.resources`` (through its ``R4B`` models, equal to R4 outside medication products) checks
structure and datatypes but not required code bindings: ``Task.status="waiting"`` parses. The
status value sets of the resources the agents write are therefore checked here as well.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from carebound.fhir._bindings import TASK_STATUS
from carebound.tools.connectors._errors import ConnectorError, FhirValidationError

FhirResource = dict[str, Any]
"""A FHIR R4 resource as JSON (``resourceType``, ``id``, ...)."""

_FM_STATUS = frozenset({"active", "cancelled", "draft", "entered-in-error"})
_REQUEST_STATUS = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)

STATUS_CODES: Mapping[str, frozenset[str]] = {
    "Task": frozenset(TASK_STATUS),
    "Communication": frozenset(
        {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        }
    ),
    "CommunicationRequest": _REQUEST_STATUS,
    "ServiceRequest": _REQUEST_STATUS,
    "DocumentReference": frozenset({"current", "superseded", "entered-in-error"}),
    "Coverage": _FM_STATUS,
    "CoverageEligibilityResponse": _FM_STATUS,
    "Claim": _FM_STATUS,
    "ClaimResponse": _FM_STATUS,
}
"""The required ``status`` value set of each resource type whose status is checked here."""

_MAX_REPORTED = 3
_VALID_SIZE = 1024
_valid: OrderedDict[bytes, None] = OrderedDict()
"""Digests of the JSON of resources found valid lately (a scenario's world is seeded with the
same resources on every start; a tool writes the same Task shape again on a replayed step)."""
_valid_lock = threading.Lock()


def json_copy(value: object, *, where: str) -> Any:
    """Return a deep copy of ``value`` made of plain JSON types, or raise if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConnectorError(
            f"{where}: the value is not plain JSON ({exc})",
            hint="pass FHIR resources as JSON dicts (strings for dates), not Python objects",
        ) from exc


def validate_resource(resource: Mapping[str, Any], *, where: str) -> FhirResource:
    """Check ``resource`` against its FHIR R4 model and status value set; return a JSON copy.

    Args:
        resource: the resource as a JSON dict.
        where: what is being validated, for the error message (e.g. ``"EHR create"``).

    Raises:
        FhirValidationError: the resource is not valid; the message names the failing fields
            but never repeats their values (they may be PHI).
    """
    data: FhirResource = json_copy(resource, where=where)
    digest = hashlib.sha256(sorted_json(data)).digest()
    with _valid_lock:
        if digest in _valid:
            _valid.move_to_end(digest)
            return data
    _check(data, where=where)
    with _valid_lock:
        _valid[digest] = None
        while len(_valid) > _VALID_SIZE:
            _valid.popitem(last=False)
    return data


def sorted_json(data: Any) -> bytes:
    """``data`` (plain JSON) with sorted keys: a key of its content for in-process caches
    (validated resources, parsed ones). orjson, or the standard library for what orjson
    refuses (an integer over 64 bits)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(data, sort_keys=True).encode()


def _check(data: Any, *, where: str) -> None:
    """Raise :class:`FhirValidationError` unless ``data`` is a valid FHIR R4 resource."""
    if not isinstance(data, dict):
        raise FhirValidationError(
            f"{where}: expected a FHIR resource object, got {type(data).__name__}",
            hint='pass a dict with a "resourceType" key',
        )
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirValidationError(
            f'{where}: the resource has no "resourceType"',
            hint='every FHIR resource names its type, e.g. {"resourceType": "Patient", ...}',
        )
    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError) as exc:
        raise FhirValidationError(
            f"{where}: {resource_type!r} is not a FHIR R4 resource type",
            hint="check the spelling and case of resourceType (e.g. DocumentReference)",
        ) from exc
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(resource)'}: {err['msg']}"
            for err in exc.errors()[:_MAX_REPORTED]
        )
        more = exc.error_count() - _MAX_REPORTED
        suffix = f" (and {more} more)" if more > 0 else ""
        raise FhirValidationError(
            f"{where}: {resource_type}/{data.get('id', '(no id)')} is not valid FHIR R4: "
            f"{problems}{suffix}",
            hint="fix the named fields; see https://hl7.org/fhir/R4/" + resource_type.lower(),
        ) from None
    allowed = STATUS_CODES.get(resource_type)
    if allowed is not None and "status" in data and data["status"] not in allowed:
        raise FhirValidationError(
            f"{where}: {resource_type}.status {data['status']!r} is not in its value set",
            hint=f"use one of: {', '.join(sorted(allowed))}",
        )


def version_of(resource: Mapping[str, Any]) -> str | None:
    """A resource's ``meta.versionId`` (what ``If-Match`` names), if it has one."""
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None
