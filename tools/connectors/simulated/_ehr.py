"""A simulated EHR: FHIR R4 resources in Redis under the run's hash tag."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from pydantic import JsonValue

from carebound.fhir._bindings import TaskStatus
from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors._ehr import EHRConnector
from carebound.tools.connectors._ehr_paths import pruned, set_path
from carebound.tools.connectors._ehr_tasks import (
    TASK_TERMINAL_STATUSES,
    TaskRole,
    check_task_change,
)
from carebound.tools.connectors._errors import (
    ConnectorError,
    ResourceNotFoundError,
    TaskPermissionError,
    VersionConflictError,
)
from carebound.tools.connectors._fhir import (
    FhirResource,
    json_copy,
    validate_resource,
    version_of,
)
from carebound.tools.connectors.simulated._ehr_search import matcher
from carebound.tools.connectors.simulated._redis_state import (
    ConnectorState,
    EffectRecord,
    WriteBatch,
)


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
        matchers = [matcher(resource_type, name, value) for name, value in params.items()]
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
        expected_version: str | None = None,
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
            VersionConflictError: ``expected_version`` is given and the stored resource is not
                at that ``meta.versionId``.
        """
        if not changes:
            raise ConnectorError(
                f"EHR update_fields: no changes given for {resource_type}/{id}",
                hint="pass at least one dotted path and its new value",
            )
        new_values = json_copy(dict(changes), where="EHR update_fields")

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            key, raw, resource = self._loaded(resource_type, id, values[0])
            if expected_version is not None and version_of(resource) != expected_version:
                raise VersionConflictError(
                    f"EHR: {resource_type}/{id} is no longer at version {expected_version}; "
                    "nothing was written",
                    hint="read it again and decide on the record as it is now",
                    reference=f"{resource_type}/{id}",
                    expected=expected_version,
                    current=version_of(resource),
                )
            diffs: list[JsonValue] = []
            for path, value in json_copy(new_values, where="EHR update_fields").items():
                before, after = set_path(resource, path, value, where=f"{resource_type}/{id}")
                diffs.append({"path": path, "before": before, "after": after})
            updated = validate_resource(
                pruned(resource), where=f"EHR update_fields {resource_type}/{id}"
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
        check_task_change(status, by_role, reason)

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


def _as_resource(record: EffectRecord) -> FhirResource:
    result = record.result
    if not isinstance(result, dict):  # pragma: no cover - records are written by this module
        raise ConnectorError(f"EHR: effect {record.idempotency_key!r} holds no resource")
    return dict(result)


def _conforms(connector: SimulatedEHR) -> EHRConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
