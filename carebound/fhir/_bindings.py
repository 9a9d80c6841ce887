"""Required code bindings that fhir.resources does not enforce, checked on the raw JSON.

fhir.resources validates types and cardinality but accepts any string for a ``code`` element
(``Task.status = "waiting"`` parses). carebound's agents branch on the elements below, so an
unknown code must stop the input instead of silently taking a wrong branch. The value sets are
the FHIR R4 ones (unchanged in R4B).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args

from carebound.fhir._errors import FhirIssue

REQUEST_STATUS = (
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
)
REQUEST_INTENT = (
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)
TaskStatus = Literal[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
]
"""FHIR R4 Task.status codes."""
TASK_STATUS: tuple[str, ...] = get_args(TaskStatus)
TASK_INTENT = (
    "unknown",
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)
DOCUMENT_REFERENCE_STATUS = ("current", "superseded", "entered-in-error")
COMPOSITION_STATUS = ("preliminary", "final", "amended", "entered-in-error")
FM_STATUS = ("active", "cancelled", "draft", "entered-in-error")
ADMINISTRATIVE_GENDER = ("male", "female", "other", "unknown")
BUNDLE_TYPE = (
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
)

#: (resourceType, element) -> (value set name, allowed codes).
REQUIRED_BINDINGS: Mapping[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("ServiceRequest", "status"): ("request-status", REQUEST_STATUS),
    ("ServiceRequest", "intent"): ("request-intent", REQUEST_INTENT),
    ("Task", "status"): ("task-status", TASK_STATUS),
    ("Task", "intent"): ("task-intent", TASK_INTENT),
    ("DocumentReference", "status"): ("document-reference-status", DOCUMENT_REFERENCE_STATUS),
    ("DocumentReference", "docStatus"): ("composition-status", COMPOSITION_STATUS),
    ("Coverage", "status"): ("fm-status", FM_STATUS),
    ("CoverageEligibilityResponse", "status"): ("fm-status", FM_STATUS),
    ("ClaimResponse", "status"): ("fm-status", FM_STATUS),
    ("Claim", "status"): ("fm-status", FM_STATUS),
    ("Patient", "gender"): ("administrative-gender", ADMINISTRATIVE_GENDER),
    ("Bundle", "type"): ("bundle-type", BUNDLE_TYPE),
}


def iter_resources(
    node: Mapping[str, Any], path: str = ""
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield ``(path, resource)`` for a resource, its Bundle entries and contained resources."""
    yield path, node
    prefix = f"{path}." if path else ""
    entries = node.get("entry") if node.get("resourceType") == "Bundle" else None
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                yield from iter_resources(resource, f"{prefix}entry[{i}].resource")
    contained = node.get("contained")
    if isinstance(contained, list):
        for j, inner in enumerate(contained):
            if isinstance(inner, dict):
                yield from iter_resources(inner, f"{prefix}contained[{j}]")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_bindings(document: Mapping[str, Any]) -> list[FhirIssue]:
    """Every required-binding violation in ``document`` (already structurally valid FHIR)."""
    issues: list[FhirIssue] = []
    for path, resource in iter_resources(document):
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            continue
        for (bound_type, element), (value_set, allowed) in REQUIRED_BINDINGS.items():
            if bound_type != resource_type or element not in resource:
                continue
            value = resource[element]
            if value not in allowed:
                where = f"{path}.{element}" if path else element
                issues.append(
                    FhirIssue(
                        where,
                        f"{_short(value)} is not a code of the required value set {value_set} "
                        f"for {resource_type}.{element}; allowed: {', '.join(allowed)}",
                    )
                )
    return issues
