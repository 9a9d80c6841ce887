"""Errors raised by the connectors, real or simulated.

Each says what the connector refused and how to fix the call::

    CareboundError
    └── ConnectorError              a connector refused a call or its data is unusable
        ├── ResourceNotFoundError   no record with that type and id / number
        ├── FhirValidationError     a resource is not valid FHIR R4 (or uses a bad status code)
        ├── TaskPermissionError     a Task status change not allowed to that role
        ├── ConnectorsConfigError   the connectors file (or configuration) cannot be used
        ├── SystemUnavailableError  a system is down (retries spent or breaker open): wait
        ├── SystemRefusedError      a system refused a call (4xx): a tool error, not retried
        ├── VersionConflictError    the record changed since the version read (412)
        └── ConnectorAuthError      the system refused carebound's credentials
"""

from __future__ import annotations

import datetime as dt

from pydantic import JsonValue

from carebound._errors import CareboundError


class ConnectorError(CareboundError):
    """A connector refused a call, or the data given to it (or seeded into it) is unusable."""


class ResourceNotFoundError(ConnectorError):
    """The record asked for does not exist in the external system."""


class FhirValidationError(ConnectorError):
    """A resource failed FHIR R4 validation, or carries a status code outside its value set."""


class TaskPermissionError(ConnectorError):
    """A Task status change that the caller's role may not make (SDOH referral Task table)."""


class ConnectorsConfigError(ConnectorError):
    """The connectors file cannot be read, is not TOML, or holds a wrong value (the message names
    the file, the dotted path and the problem), or a configured connector cannot be loaded."""


class SystemUnavailableError(ConnectorError):
    """An external system is down: a call failed transiently after its retries, or the
    system's circuit breaker is open. Not the call's fault: the run waits and tries again.

    Args:
        system: the system (``ehr``, ``payer``, ``office``, ``email`` ...).
        retry_at: when to try again at the earliest (the breaker's cool-down or a
            ``Retry-After``), or None when unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str,
        retry_at: dt.datetime | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.system = system
        self.retry_at = retry_at


class SystemRefusedError(ConnectorError):
    """An external system refused a call (a 4xx other than 429, or a permanent 5xx): a tool
    error the planner sees; never retried."""

    def __init__(self, message: str, *, system: str, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.system = system
        self.status = status


class VersionConflictError(ConnectorError):
    """The record changed since the version a write was based on (FHIR ``If-Match`` answered
    412, or the version read no longer matches): nothing was written.

    The engine does not overwrite: the call is held again for a person, who sees the record as
    it is now.

    Args:
        message: what changed, and where.
        hint: how to fix it.
        reference: the record, e.g. ``"Patient/123"``.
        expected: the version the write was based on.
        current: the version the system holds now (None when it did not say).
        rebase: argument values under which the same call would apply to the record as it is
            now (set by a tool; the engine holds the call again with them).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reference: str,
        expected: str | None,
        current: str | None,
        rebase: dict[str, JsonValue] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reference = reference
        self.expected = expected
        self.current = current
        self.rebase = rebase


class ConnectorAuthError(ConnectorError):
    """The system refused carebound's credentials (a token endpoint refused the client
    assertion, or the server answered 401/403 even with a fresh token)."""
