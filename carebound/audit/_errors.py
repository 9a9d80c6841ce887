"""Errors of the audit trail (all under ``carebound.CareboundError``)."""

from __future__ import annotations

from carebound._errors import CareboundError


class AuditDetailError(CareboundError, ValueError):
    """An event's ``detail`` is too large to be a reference: it looks like a document or PHI."""


class AuditConflictError(CareboundError):
    """An event could not be appended: other writers kept moving the run's chain head."""


class AuditCorruptError(CareboundError):
    """A stored audit entry cannot be read back as an ``AuditEvent``."""


class AuditKeyError(CareboundError):
    """The audit key configuration is malformed, or the key file cannot be used."""


class AuditExportError(CareboundError):
    """An anchors file (``carebound audit export``) cannot be read or appended to."""
