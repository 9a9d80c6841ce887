"""The EHR: FHIR R4 resources read, searched and written by agents.

:class:`EHRConnector` is the interface agents act through; :class:`SimulatedEHR` keeps a run's
resources in Redis. Every write is validated as FHIR R4 first (``fhir.resources.R4B``), and
Task status changes follow the SDOH Clinical Care referral Task permission table
(:data:`TASK_STATUS_SETTERS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, get_args

import redis
from pydantic import JsonValue

from carebound._keys import DEFAULT_PREFIX
from carebound.tools.connectors._errors import (
    ConnectorError,
    ResourceNotFoundError,
    TaskPermissionError,
)
from carebound.tools.connectors._fhir import FhirResource, json_copy, validate_resource
from carebound.tools.connectors._redis_state import ConnectorState, EffectRecord, WriteBatch

TaskRole = Literal["requester", "performer"]
"""Who changes a referral Task: the organisation that asked, or the one that does the work."""

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

_REQUESTER: frozenset[TaskRole] = frozenset({"requester"})
_PERFORMER: frozenset[TaskRole] = frozenset({"performer"})

TASK_STATUS_SETTERS: Mapping[str, frozenset[TaskRole]] = {
    "draft": _REQUESTER,
    "requested": _REQUESTER,
    "entered-in-error": _REQUESTER,
    "accepted": _PERFORMER,
    "rejected": _PERFORMER,
    "in-progress": _PERFORMER,
    "on-hold": _PERFORMER,
    "failed": _PERFORMER,
    "completed": _PERFORMER,
    "cancelled": frozenset({"requester", "performer"}),
}
"""Which role may set each referral Task status (SDOH Clinical Care IG). ``received`` and
``ready`` are not used by referral Tasks, so no role may set them."""

TASK_TERMINAL_STATUSES = frozenset(
    {"completed", "cancelled", "failed", "rejected", "entered-in-error"}
)
"""Task statuses that end the Task; from these only ``entered-in-error`` may follow."""

TASK_STATUSES_NEEDING_REASON = frozenset({"failed", "rejected"})
"""Statuses that must say why (``Task.statusReason``)."""


class EHRConnector(Protocol):
    """What agents may do in an EHR: read and search FHIR resources, write a few of them."""

    def read(self, resource_type: str, id: str) -> FhirResource:
        """Return the resource ``resource_type/id``.

        Raises:
            ResourceNotFoundError: there is no such resource.
        """
        ...

    def search(self, resource_type: str, **params: str) -> list[FhirResource]:
        """Return the resources of ``resource_type`` matching every search parameter.

        Parameter names follow FHIR search (``based_on`` may be written for ``based-on``).
        """
        ...

    def create(self, resource: Mapping[str, Any], *, idempotency_key: str) -> str:
        """Store a new resource (an id is assigned when missing) and return its id."""
        ...

    def update_fields(
        self,
        resource_type: str,
        id: str,
        changes: Mapping[str, object],
        *,
        idempotency_key: str,
    ) -> FhirResource:
        """Apply dotted-path field changes (``"name.0.family"``; None removes) and return the
        updated resource."""
        ...

    def set_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        by_role: TaskRole,
        reason: str | None = None,
        idempotency_key: str,
    ) -> FhirResource:
        """Move a Task to ``status`` as ``by_role`` and return the updated Task.

        Raises:
            TaskPermissionError: ``by_role`` may not set ``status``, or the Task already ended.
        """
        ...


class SimulatedEHR:
    """An EHR whose FHIR resources live in Redis under the run's hash tag.

    Reads see every write at once, from any process. Writes are effects: each is applied at most
    once per idempotency key, and a repeat returns the first call's result.

    Args:
        client: a sync Redis client.
        run_id: the run whose world this is.
        prefix: the key prefix.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._state = ConnectorState(client, run_id, prefix=prefix, system="ehr")

    def read(self, resource_type: str, id: str) -> FhirResource:
        """Return the resource ``resource_type/id`` (a fresh copy).

        Raises:
            ResourceNotFoundError: there is no such resource.
        """
        raw = self._state.hget(self._type_key(resource_type), id)
        if raw is None:
            raise ResourceNotFoundError(
                f"EHR: {resource_type}/{id} does not exist",
                hint="check the id, or search by identifier first",
            )
        resource: FhirResource = json.loads(raw)
        return resource

    def search(self, resource_type: str, **params: str) -> list[FhirResource]:
        """Return the matching resources, sorted by id.

        Supported parameters: ``_id`` on every type; Patient ``identifier`` (``value`` or
        ``system|value``), ``family`` and ``given`` (case-insensitive prefix), ``birthdate``;
        Task ``focus``, ``based-on``, ``status``, ``owner``; DocumentReference ``subject``,
        ``type`` (code or ``system|code``), ``status``; Communication ``based-on``, ``subject``,
        ``status``. References are matched as ``Type/id``.

        Raises:
            ConnectorError: a parameter is not supported for ``resource_type``.
        """
        matchers = [_matcher(resource_type, name, value) for name, value in params.items()]
        found = [json.loads(raw) for raw in self._state.hvals(self._type_key(resource_type))]
        hits: list[FhirResource] = [r for r in found if all(m(r) for m in matchers)]
        return sorted(hits, key=lambda r: str(r.get("id", "")))

    def create(self, resource: Mapping[str, Any], *, idempotency_key: str) -> str:
        """Validate and store a new resource; return its id.

        A missing id is derived from the idempotency key, so a retried create reuses it.

        Raises:
            FhirValidationError: the resource is not valid FHIR R4.
            ConnectorError: a resource with the given id already exists.
        """
        draft = json_copy(resource, where="EHR create")
        if isinstance(draft, dict) and "id" not in draft:
            draft["id"] = self._state.derived_id("create", idempotency_key)
        data = validate_resource(draft, where="EHR create")

        key = self._type_key(data["resourceType"])

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            if values[0] is not None:
                raise ConnectorError(
                    f"EHR create: {data['resourceType']}/{data['id']} already exists",
                    hint="leave id out to have one assigned, or use update_fields to change it",
                )
            batch = WriteBatch()
            encoded = json.dumps(data)
            batch.guard(key, data["id"], None)
            batch.op("HSET", key, data["id"], encoded)
            payload: dict[str, JsonValue] = {
                "resourceType": data["resourceType"],
                "id": data["id"],
                "resource": data,
            }
            return batch, payload, data["id"]

        reads = [(key, data["id"])]
        record = self._state.apply_once(idempotency_key, "create", compute, reads=reads)
        return str(record.result)

    def update_fields(
        self,
        resource_type: str,
        id: str,
        changes: Mapping[str, object],
        *,
        idempotency_key: str,
    ) -> FhirResource:
        """Apply dotted-path changes to a resource and return it as stored after the change.

        A path walks object keys and list indexes (``"telecom.1.value"``); an index equal to the
        list's length appends. A value of None removes the field. The effect payload records
        each field's ``before`` and ``after``. The whole result is validated before it is
        stored: an invalid change stores nothing.

        Raises:
            ResourceNotFoundError: there is no such resource.
            FhirValidationError: the changed resource is not valid FHIR R4.
            ConnectorError: a path is malformed or tries to change ``id`` or ``resourceType``.
        """
        if not changes:
            raise ConnectorError(
                f"EHR update_fields: no changes given for {resource_type}/{id}",
                hint="pass at least one dotted path and its new value",
            )
        new_values = json_copy(dict(changes), where="EHR update_fields")

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            key, raw, resource = self._loaded(resource_type, id, values[0])
            diffs: list[JsonValue] = []
            for path, value in json_copy(new_values, where="EHR update_fields").items():
                before, after = _set_path(resource, path, value, where=f"{resource_type}/{id}")
                diffs.append({"path": path, "before": before, "after": after})
            updated = validate_resource(
                _pruned(resource), where=f"EHR update_fields {resource_type}/{id}"
            )
            batch = WriteBatch()
            batch.guard(key, id, raw)
            batch.op("HSET", key, id, json.dumps(updated))
            payload: dict[str, JsonValue] = {
                "resourceType": resource_type,
                "id": id,
                "changes": diffs,
            }
            return batch, payload, updated

        reads = [(self._type_key(resource_type), id)]
        record = self._state.apply_once(idempotency_key, "update_fields", compute, reads=reads)
        return _as_resource(record)

    def set_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        by_role: TaskRole,
        reason: str | None = None,
        idempotency_key: str,
    ) -> FhirResource:
        """Move Task ``task_id`` to ``status`` as ``by_role``; return the updated Task.

        ``reason`` is stored as ``Task.statusReason.text`` (an earlier reason is removed when
        none is given). ``failed`` and ``rejected`` need a reason.

        Raises:
            TaskPermissionError: the role may not set that status (see
                :data:`TASK_STATUS_SETTERS`), or the Task has already ended.
            ConnectorError: a reason is missing where one is needed.
            ResourceNotFoundError: there is no such Task.
        """
        _check_task_change(status, by_role, reason)

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            key, raw, task = self._loaded("Task", task_id, values[0])
            before = task.get("status")
            if before in TASK_TERMINAL_STATUSES and status != "entered-in-error":
                raise TaskPermissionError(
                    f"EHR: Task/{task_id} is already {before}; it cannot become {status}",
                    hint="a finished Task stays finished; create a new Task for new work "
                    "(the requester may still mark it entered-in-error)",
                )
            task["status"] = status
            if reason:
                task["statusReason"] = {"text": reason}
            else:
                task.pop("statusReason", None)
            updated = validate_resource(task, where=f"EHR set_task_status Task/{task_id}")
            batch = WriteBatch()
            batch.guard(key, task_id, raw)
            batch.op("HSET", key, task_id, json.dumps(updated))
            payload: dict[str, JsonValue] = {
                "resourceType": "Task",
                "id": task_id,
                "by_role": by_role,
                "reason": reason,
                "changes": [{"path": "status", "before": before, "after": status}],
            }
            return batch, payload, updated

        reads = [(self._type_key("Task"), task_id)]
        record = self._state.apply_once(idempotency_key, "set_task_status", compute, reads=reads)
        return _as_resource(record)

    def effects(self) -> list[EffectRecord]:
        """Every write applied, one per idempotency key, in order."""
        return self._state.effects()

    def attempts(self) -> int:
        """How many write calls came in, repeats included."""
        return self._state.attempts()

    def seed(self, batch: WriteBatch, resources: Iterable[FhirResource]) -> None:
        """Add writes that store already-validated ``resources`` to a seeding batch."""
        for resource in resources:
            batch.op(
                "HSET",
                self._type_key(resource["resourceType"]),
                resource["id"],
                json.dumps(resource),
            )

    def _type_key(self, resource_type: str) -> str:
        return self._state.key("res", resource_type)

    def _loaded(
        self, resource_type: str, id: str, raw: str | None
    ) -> tuple[str, str, FhirResource]:
        """The resource's key, stored JSON and parsed form, from its read value ``raw``."""
        key = self._type_key(resource_type)
        if raw is None:
            raise ResourceNotFoundError(
                f"EHR: {resource_type}/{id} does not exist",
                hint="check the id, or search by identifier first",
            )
        return key, raw, json.loads(raw)


def _check_task_change(status: str, by_role: str, reason: str | None) -> None:
    if status not in get_args(TaskStatus):
        raise ConnectorError(
            f"EHR: {status!r} is not a Task status",
            hint=f"use one of: {', '.join(sorted(TASK_STATUS_SETTERS))}",
        )
    if by_role not in get_args(TaskRole):
        raise ConnectorError(
            f"EHR: unknown Task role {by_role!r}", hint='use "requester" or "performer"'
        )
    allowed = TASK_STATUS_SETTERS.get(status, frozenset())
    if by_role not in allowed:
        who = " or the ".join(sorted(allowed)) if allowed else "no one (unused by referral Tasks)"
        raise TaskPermissionError(
            f"EHR: the {by_role} may not set a referral Task to {status!r}; only the {who} may",
            hint="requester: draft/requested/entered-in-error; performer: accepted/rejected/"
            "in-progress/on-hold/failed/completed; either: cancelled",
        )
    if status in TASK_STATUSES_NEEDING_REASON and not (reason and reason.strip()):
        raise ConnectorError(
            f"EHR: setting a Task to {status!r} needs a reason",
            hint="pass reason=... (stored as Task.statusReason)",
        )


def _as_resource(record: EffectRecord) -> FhirResource:
    result = record.result
    if not isinstance(result, dict):  # pragma: no cover - records are written by this module
        raise ConnectorError(f"EHR: effect {record.idempotency_key!r} holds no resource")
    return dict(result)


# --- dotted-path changes ---------------------------------------------------------------------

_PROTECTED = frozenset({"id", "resourceType"})


def _set_path(doc: FhirResource, path: str, value: Any, *, where: str) -> tuple[Any, Any]:
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


def _pruned(value: Any) -> Any:
    """Drop the empty objects and lists a removal can leave behind (FHIR forbids them)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [])}
    if isinstance(value, list):
        items = [_pruned(v) for v in value]
        return [v for v in items if v not in ({}, [])]
    return value


# --- search ----------------------------------------------------------------------------------

Matcher = Callable[[FhirResource], bool]

_SEARCH_PARAMS: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"identifier", "family", "given", "birthdate"}),
    "Task": frozenset({"focus", "based-on", "status", "owner"}),
    "DocumentReference": frozenset({"subject", "type", "status"}),
    "Communication": frozenset({"based-on", "subject", "status"}),
}


def _matcher(resource_type: str, name: str, value: str) -> Matcher:
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


def _conforms(connector: SimulatedEHR) -> EHRConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
