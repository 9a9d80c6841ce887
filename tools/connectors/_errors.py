"""Errors raised by the connectors, real or simulated.

Each says what the connector refused and how to fix the call::

    CareboundError
    └── ConnectorError              a connector refused a call or its data is unusable
        ├── ResourceNotFoundError   no record with that type and id / number
        ├── FhirValidationError     a resource is not valid FHIR R4 (or uses a bad status code)
        ├── TaskPermissionError     a Task status change not allowed to that role
        └── ConnectorsConfigError   the connectors file (or configuration) cannot be used
"""

from __future__ import annotations

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
