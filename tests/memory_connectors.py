"""Connectors kept in plain Python objects (no Redis, no simulator code): a service's own
``Connectors`` implementation as a test writes one, to show the extension point is enough.

Resources are validated as FHIR R4 (``validate_resource``), Task status changes follow the
referral Task permission table (``check_task_change``), and every write is applied at most once
per idempotency key, as the Protocols require.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from carebound.tools.connectors import (
    Channel,
    Connectors,
    FhirResource,
    InboundDocument,
    OutreachReceipt,
    ResourceNotFoundError,
    RunContext,
    TaskRole,
    TaskStatus,
    UnconnectedERP,
    UnconnectedPayer,
    validate_resource,
)
from carebound.tools.connectors._ehr_tasks import check_task_change

_REFERENCE_FIELDS = {
    "subject": "subject",
    "based_on": "basedOn",
    "focus": "focus",
    "owner": "owner",
}


class MemoryEHR:
    """An EHR in a dict."""

    def __init__(self, resources: Iterable[Mapping[str, Any]] = ()) -> None:
        self.resources: dict[tuple[str, str], FhirResource] = {}
        self.writes: dict[str, Any] = {}
        """idempotency key -> the first result (a repeat returns it and writes nothing)."""
        self.write_calls = 0
        self._lock = threading.Lock()
        for resource in resources:
            data = validate_resource(resource, where="memory EHR seed")
            self.resources[(data["resourceType"], str(data["id"]))] = data

    def read(self, resource_type: str, id: str) -> FhirResource:
        try:
            return copy.deepcopy(self.resources[(resource_type, id)])
        except KeyError:
            raise ResourceNotFoundError(f"memory EHR: no {resource_type}/{id}") from None

    def search(self, resource_type: str, **params: str) -> list[FhirResource]:
        found = [
            copy.deepcopy(r)
            for (kind, _), r in sorted(self.resources.items())
            if kind == resource_type and all(_matches(r, k, v) for k, v in params.items())
        ]
        return found

    def create(self, resource: Mapping[str, Any], *, idempotency_key: str) -> str:
        with self._lock:
            self.write_calls += 1
            if idempotency_key in self.writes:
                return str(self.writes[idempotency_key])
            data = dict(resource)
            data.setdefault("id", uuid.uuid4().hex[:12])
            data = validate_resource(data, where="memory EHR create")
            self.resources[(data["resourceType"], str(data["id"]))] = data
            self.writes[idempotency_key] = data["id"]
            return str(data["id"])

    def update_fields(
        self,
        resource_type: str,
        id: str,
        changes: Mapping[str, object],
        *,
        idempotency_key: str,
    ) -> FhirResource:
        with self._lock:
            self.write_calls += 1
            if idempotency_key in self.writes:
                return dict(self.writes[idempotency_key])
            resource = self.read(resource_type, id)
            for path, value in changes.items():
                _set(resource, path.split("."), value)
            resource = validate_resource(resource, where="memory EHR update")
            self.resources[(resource_type, id)] = resource
            self.writes[idempotency_key] = resource
            return copy.deepcopy(resource)

    def set_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        by_role: TaskRole,
        reason: str | None = None,
        idempotency_key: str,
    ) -> FhirResource:
        with self._lock:
            self.write_calls += 1
            if idempotency_key in self.writes:
                return dict(self.writes[idempotency_key])
            check_task_change(status, by_role, reason)
            task = self.read("Task", task_id)
            task["status"] = status
            if reason:
                task["statusReason"] = {"text": reason}
            self.resources[("Task", task_id)] = task
            self.writes[idempotency_key] = task
            return copy.deepcopy(task)


class MemoryOutreach:
    """Outreach that records what was sent; replies are delivered by the test itself."""

    def __init__(self) -> None:
        self.sent: dict[str, OutreachReceipt] = {}
        self._lock = threading.Lock()

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        with self._lock:
            if idempotency_key not in self.sent:
                attempt = 1 + sum(1 for r in self.sent.values() if r.request_id == request_id)
                self.sent[idempotency_key] = OutreachReceipt(
                    message_id=f"m{len(self.sent) + 1}", channel=channel, to=to,
                    request_id=request_id, attempt=attempt, sent_at=now,
                )  # fmt: skip
            return self.sent[idempotency_key]

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        return []


@dataclass
class MemorySystems:
    """One deployment's systems, shared by every run (as real systems are)."""

    ehr: MemoryEHR
    outreach: MemoryOutreach = field(default_factory=MemoryOutreach)
    runs: list[RunContext] = field(default_factory=list)
    """The contexts the factory was called with."""

    def __call__(self, run: RunContext, /) -> Connectors:
        self.runs.append(run)
        return Connectors(
            ehr=self.ehr, outreach=self.outreach, payer=UnconnectedPayer(), erp=UnconnectedERP()
        )


def _matches(resource: Mapping[str, Any], name: str, value: str) -> bool:
    if name == "status":
        return resource.get("status") == value
    if name == "_id":
        return resource.get("id") == value
    field_name = _REFERENCE_FIELDS.get(name)
    if field_name is None:
        raise ValueError(f"memory EHR: search parameter {name!r} is not supported")
    refs = resource.get(field_name)
    refs = refs if isinstance(refs, list) else [refs]
    return any(isinstance(r, Mapping) and r.get("reference") == value for r in refs)


def _set(node: Any, path: list[str], value: object) -> None:
    head, rest = path[0], path[1:]
    key: Any = int(head) if isinstance(node, list) else head
    if not rest:
        if value is None:
            del node[key]
        else:
            node[key] = value
        return
    if isinstance(node, dict) and head not in node:
        node[head] = {}
    _set(node[key], rest, value)
