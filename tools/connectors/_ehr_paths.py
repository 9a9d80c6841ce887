"""Dotted-path changes to a FHIR resource (``name.0.family``): setting a value where the path
leads, refusing protected fields, and pruning what an emptied value leaves behind.
"""

from __future__ import annotations

from typing import Any

from carebound.tools.connectors._errors import (
    ConnectorError,
)
from carebound.tools.connectors._fhir import FhirResource

_PROTECTED = frozenset({"id", "resourceType"})


def set_path(doc: FhirResource, path: str, value: Any, *, where: str) -> tuple[Any, Any]:
    """Set (or with None, remove) ``path`` in ``doc``; return the field's before and after."""
    parts = path.split(".")
    if not path or any(not part for part in parts) or parts[0] in _PROTECTED:
        raise ConnectorError(
            f"EHR update_fields {where}: cannot change path {path!r}",
            hint='use a dotted path below the resource, e.g. "name.0.family"; '
            "id and resourceType cannot change",
        )
    node: Any = doc
    for depth, part in enumerate(parts[:-1]):
        child = _get(node, part, path=path, where=where)
        if child is None:
            if value is None:
                return None, None
            child = [] if parts[depth + 1].isdigit() else {}
            _put(node, part, child, path=path, where=where)
        node = child
    last = parts[-1]
    before = _get(node, last, path=path, where=where)
    if value is None:
        if before is not None:
            if isinstance(node, list):
                node.pop(int(last))
            else:
                del node[last]
    else:
        _put(node, last, value, path=path, where=where)
    return before, value


def _get(node: Any, part: str, *, path: str, where: str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and part.isdigit():
        index = int(part)
        return node[index] if index < len(node) else None
    raise ConnectorError(
        f"EHR update_fields {where}: path {path!r} does not fit the resource at {part!r}",
        hint="use a number to index a list, a field name for an object",
    )


def _put(node: Any, part: str, value: Any, *, path: str, where: str) -> None:
    if isinstance(node, dict) and not part.isdigit():
        node[part] = value
        return
    if isinstance(node, list) and part.isdigit() and int(part) <= len(node):
        index = int(part)
        if index == len(node):
            node.append(value)
        else:
            node[index] = value
        return
    raise ConnectorError(
        f"EHR update_fields {where}: path {path!r} does not fit the resource at {part!r}",
        hint="a list index may be at most the list's length (which appends)",
    )


def pruned(value: Any) -> Any:
    """Drop the empty objects and lists a removal can leave behind (FHIR forbids them)."""
    if isinstance(value, dict):
        kept = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [])}
    if isinstance(value, list):
        items = [pruned(v) for v in value]
        return [v for v in items if v not in ({}, [])]
    return value
