"""An EHR over FHIR R4 REST: :class:`RestEHR` implements ``EHRConnector``.

Writes are safe to retry on the server's side, not only in carebound's effect ledger:

* every resource carebound creates carries the ledger's key as an identifier
  (:data:`EFFECT_SYSTEM`), and is posted with ``If-None-Exist: identifier=<system>|<key>``, so
  a call repeated after a crash or a timeout finds the first one instead of creating another;
* a resource whose id carebound chose (a document-request Task) is created with ``PUT`` on that
  id after a read shows it absent, and a repeat finds it carrying the same effect identifier;
* a change to an existing resource is a ``PUT`` with ``If-Match`` on the version read (or the
  version the decision was made on): a 412 means someone else changed it, and
  :class:`VersionConflictError` says so; nothing is overwritten. A repeat after a lost answer
  finds its changes already in place and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carebound.fhir._bindings import TaskStatus
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
from carebound.tools.connectors.fhir_rest._client import FhirRestClient

EFFECT_SYSTEM = "urn:carebound:effect"
"""Identifier system of the effect ledger's key on every resource carebound writes."""


def effect_identifier(key: str) -> dict[str, str]:
    """The identifier that marks a resource as written by the effect ``key``."""
    return {"system": EFFECT_SYSTEM, "value": key}


def effect_search(key: str) -> str:
    """The search (``If-None-Exist`` query) that finds the resource written by ``key``."""
    return f"identifier={EFFECT_SYSTEM}|{_escape(key)}"


class RestEHR:
    """An EHR reached over FHIR R4 REST.

    Args:
        client: the FHIR client of the EHR's base URL.
    """

    def __init__(self, client: FhirRestClient) -> None:
        self.client = client

    def read(self, resource_type: str, id: str) -> FhirResource:
        """``GET Type/id`` (validated; ``meta.versionId`` kept for a later ``If-Match``).

        Raises:
            ResourceNotFoundError: there is no such resource.
        """
        return self.client.read(resource_type, id)

    def search(self, resource_type: str, **params: str) -> list[FhirResource]:
        """FHIR search; ``based_on`` may be written for ``based-on``. Results sorted by id, as
        the simulated EHR returns them."""
        query = {(k if k.startswith("_") else k.replace("_", "-")): v for k, v in params.items()}
        found = self.client.search(resource_type, query)
        return sorted(found, key=lambda r: str(r.get("id", "")))

    def create(self, resource: Mapping[str, Any], *, idempotency_key: str) -> str:
        """Create ``resource`` once per ``idempotency_key``, on the server too; return its id.

        Without an id the server assigns one (conditional create on the effect identifier);
        with one, it is created under that id unless it exists.

        Raises:
            FhirValidationError: the resource is not valid FHIR R4.
            ConnectorError: a resource with the given id exists and was not written by this
                effect.
        """
        draft = json_copy(resource, where="EHR create")
        if not isinstance(draft, dict):
            raise ConnectorError("EHR create: expected a FHIR resource object")
        marker = effect_identifier(idempotency_key)
        identifiers = list(draft.get("identifier") or [])
        if marker not in identifiers:
            draft["identifier"] = [*identifiers, marker]
        data = validate_resource(draft, where="EHR create")
        resource_id = data.get("id")
        if resource_id is None:
            created = self.client.create(data, if_none_exist=effect_search(idempotency_key))
            return str(created["id"])
        try:
            existing = self.client.read(data["resourceType"], resource_id)
        except ResourceNotFoundError:
            self.client.update(data, if_match=None)
            return str(resource_id)
        if marker in (existing.get("identifier") or []):
            return str(resource_id)  # this effect created it before: a repeat
        raise ConnectorError(
            f"EHR create: {data['resourceType']}/{resource_id} already exists",
            hint="leave id out to have one assigned, or use update_fields to change it",
        )

    def update_fields(
        self,
        resource_type: str,
        id: str,
        changes: Mapping[str, object],
        *,
        idempotency_key: str,
        expected_version: str | None = None,
    ) -> FhirResource:
        """Apply dotted-path changes with ``If-Match`` and return the resource as stored.

        Args:
            expected_version: the ``meta.versionId`` the change was decided on; when given and
                the record has moved on, nothing is written.

        Raises:
            VersionConflictError: the record changed since ``expected_version`` or since it was
                read (412); nothing was written.
            ResourceNotFoundError: there is no such resource.
            FhirValidationError: the changed resource is not valid FHIR R4.
        """
        if not changes:
            raise ConnectorError(
                f"EHR update_fields: no changes given for {resource_type}/{id}",
                hint="pass at least one dotted path and its new value",
            )
        current = self.client.read(resource_type, id)
        updated = json_copy(current, where="EHR update_fields")
        for path, value in json_copy(dict(changes), where="EHR update_fields").items():
            set_path(updated, path, value, where=f"{resource_type}/{id}")
        updated = pruned(updated)
        if _same(updated, current):
            return current  # already in place: a repeat after a lost answer writes nothing
        return self._put(updated, current, expected_version)

    def set_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        by_role: TaskRole,
        reason: str | None = None,
        idempotency_key: str,
    ) -> FhirResource:
        """Move Task ``task_id`` to ``status`` as ``by_role`` (``If-Match`` on the Task read).

        Raises:
            TaskPermissionError: the role may not set that status, or the Task already ended.
            VersionConflictError: the Task changed between the read and the write.
            ResourceNotFoundError: there is no such Task.
        """
        check_task_change(status, by_role, reason)
        task = self.client.read("Task", task_id)
        before = task.get("status")
        wanted = json_copy(task, where="EHR set_task_status")
        wanted["status"] = status
        if reason:
            wanted["statusReason"] = {"text": reason}
        else:
            wanted.pop("statusReason", None)
        if _same(wanted, task):
            return task  # a repeat: the Task already is where this call moves it
        if before in TASK_TERMINAL_STATUSES and status != "entered-in-error":
            raise TaskPermissionError(
                f"EHR: Task/{task_id} is already {before}; it cannot become {status}",
                hint="a finished Task stays finished; create a new Task for new work "
                "(the requester may still mark it entered-in-error)",
            )
        return self._put(wanted, task, None)

    def _put(
        self, updated: FhirResource, current: FhirResource, expected: str | None
    ) -> FhirResource:
        ref = f"{current['resourceType']}/{current['id']}"
        version = version_of(current)
        if expected is not None and version != expected:
            raise VersionConflictError(
                f"EHR: {ref} changed since version {expected} (it is at {version}); "
                "nothing was written",
                hint="decide again on the record as it is now",
                reference=ref,
                expected=expected,
                current=version,
            )
        try:
            return self.client.update(updated, if_match=version)
        except VersionConflictError as exc:
            now = self.client.read(current["resourceType"], current["id"])
            if _same(updated, now):
                return now  # our own earlier attempt landed: nothing more to write
            raise VersionConflictError(
                exc.message,
                hint=exc.hint,
                reference=ref,
                expected=expected or version,
                current=version_of(now),
            ) from None


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from ``meta`` (which the server maintains)."""
    return {k: v for k, v in a.items() if k != "meta"} == {
        k: v for k, v in b.items() if k != "meta"
    }


def _escape(value: str) -> str:
    """Escape FHIR search's special characters in a token value."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")
