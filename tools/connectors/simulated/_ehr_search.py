"""FHIR search on the simulated EHR: the supported parameters per resource type, and a matcher
for each (identifiers, names, dates, references).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from carebound.tools.connectors._errors import (
    ConnectorError,
)
from carebound.tools.connectors._fhir import FhirResource

Matcher = Callable[[FhirResource], bool]

_SEARCH_PARAMS: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"identifier", "family", "given", "birthdate"}),
    "Task": frozenset({"focus", "based-on", "status", "owner"}),
    "DocumentReference": frozenset({"subject", "type", "status"}),
    "Communication": frozenset({"based-on", "subject", "status"}),
}


def matcher(resource_type: str, name: str, value: str) -> Matcher:
    """The test for one search parameter (``name=value``) on ``resource_type``."""
    param = name if name.startswith("_") else name.replace("_", "-")
    supported = _SEARCH_PARAMS.get(resource_type, frozenset()) | {"_id"}
    if param not in supported:
        raise ConnectorError(
            f"EHR search: parameter {param!r} is not supported for {resource_type}",
            hint=f"supported for {resource_type}: {', '.join(sorted(supported))}",
        )
    if param == "_id":
        return lambda r: r.get("id") == value
    if param == "status":
        return lambda r: r.get("status") == value
    if param == "identifier":
        return lambda r: any(_identifier_matches(i, value) for i in r.get("identifier", []))
    if param == "birthdate":
        return lambda r: r.get("birthDate") == value
    if param in ("family", "given"):
        wanted = value.casefold()
        return lambda r: any(
            name_part.casefold().startswith(wanted)
            for human in r.get("name", [])
            for name_part in _name_parts(human, param)
        )
    if param == "type":
        return lambda r: any(
            _identifier_matches(coding, value, value_field="code")
            for coding in r.get("type", {}).get("coding", [])
        )
    field = {"based-on": "basedOn", "subject": "subject", "focus": "focus", "owner": "owner"}[param]
    return lambda r: any(_reference_matches(ref, value) for ref in _references(r.get(field)))


def _name_parts(human: Mapping[str, Any], param: str) -> list[str]:
    if param == "family":
        family = human.get("family")
        return [family] if isinstance(family, str) else []
    return [g for g in human.get("given", []) if isinstance(g, str)]


def _identifier_matches(item: Mapping[str, Any], query: str, *, value_field: str = "value") -> bool:
    system, sep, wanted = query.rpartition("|")
    if item.get(value_field) != wanted:
        return False
    return not sep or not system or item.get("system") == system


def _references(field_value: Any) -> list[Mapping[str, Any]]:
    if isinstance(field_value, dict):
        return [field_value]
    if isinstance(field_value, list):
        return [ref for ref in field_value if isinstance(ref, dict)]
    return []


def _reference_matches(ref: Mapping[str, Any], wanted: str) -> bool:
    reference = ref.get("reference")
    if not isinstance(reference, str):
        return False
    return reference == wanted or reference.endswith("/" + wanted)
