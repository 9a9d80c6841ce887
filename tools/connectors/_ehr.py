"""The EHR: FHIR R4 resources read, searched and written by agents.

:class:`EHRConnector` is the interface agents act through (the simulated one keeps a run's
resources in Redis: :mod:`carebound.tools.connectors.simulated`). Every write is validated as
FHIR R4 first (``fhir.resources.R4B``), and Task status changes follow the SDOH Clinical Care
referral Task permission table (:data:`TASK_STATUS_SETTERS`, in ``_ehr_tasks``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from carebound.fhir._bindings import TaskStatus
from carebound.tools.connectors._ehr_tasks import (
    TaskRole,
)
from carebound.tools.connectors._fhir import FhirResource


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
        expected_version: str | None = None,
    ) -> FhirResource:
        """Apply dotted-path field changes (``"name.0.family"``; None removes) and return the
        updated resource.

        Raises:
            VersionConflictError: ``expected_version`` is given and the resource is no longer
                at that ``meta.versionId``; nothing was written.
        """
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
