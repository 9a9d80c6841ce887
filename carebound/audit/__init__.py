"""Tamper-evident audit trail (HIPAA 45 CFR 164.312(b), ASTM E2147 fields).

One hash chain per run, stored in a Redis stream under the run's hash tag, plus a global index
stream for review across runs::

    {prefix}:{<run_id>}:audit        stream, one entry per event: the source of truth
    {prefix}:{<run_id>}:audit:head   hash: seq and hash of the run's last event
    {prefix}:audit                   stream: global index (run_id, seq, hash, event)

Events hold references, never PHI: a FHIR patient reference and small flat ``detail`` values.
"""

from carebound.audit._async_log import AsyncAuditLog
from carebound.audit._chain import canonical_json
from carebound.audit._errors import AuditConflictError, AuditCorruptError, AuditDetailError
from carebound.audit._log import AuditLog
from carebound.audit._models import (
    GENESIS_HASH,
    MAX_DETAIL_CHARS,
    Actor,
    AuditAction,
    AuditEvent,
    AuditIndexEntry,
    AuditOutcome,
    VerifyResult,
)

__all__ = [
    "GENESIS_HASH",
    "MAX_DETAIL_CHARS",
    "Actor",
    "AsyncAuditLog",
    "AuditAction",
    "AuditConflictError",
    "AuditCorruptError",
    "AuditDetailError",
    "AuditEvent",
    "AuditIndexEntry",
    "AuditLog",
    "AuditOutcome",
    "VerifyResult",
    "canonical_json",
]
