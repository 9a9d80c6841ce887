"""Tamper-evident audit trail (HIPAA 45 CFR 164.312(b), ASTM E2147 fields).

One hash chain per run, stored in a Redis stream under the run's hash tag, every event signed
(HMAC-SHA256) with the audit key (``AuditKeyring``), plus two global keys outside the runs'::

    {prefix}:{<run_id>}:audit        stream, one entry per event: the source of truth
    {prefix}:{<run_id>}:audit:head   hash: seq and hash of the run's last event, its stream's
                                     shape at the last compaction, and the once keys recorded
                                     (``o:<key>``; runs recorded before: ``audit:once``)
    {prefix}:audit                   stream: global index (run_id, seq, hash, event)
    {prefix}:audit:anchors           hash: run_id -> "seq:hash", each run's head mirrored

``export_checkpoints`` appends signed checkpoints of runs' heads to a file outside Redis
(``carebound audit export``); ``read_anchors`` reads them back for verification.

Events hold references, never PHI: a FHIR patient reference and small flat ``detail`` values.
"""

from carebound.audit._archive import (
    ArchiveReport,
    archive_chains,
    archive_lock,
    verify_archive,
)
from carebound.audit._chain import canonical_json
from carebound.audit._errors import (
    AuditConflictError,
    AuditCorruptError,
    AuditDetailError,
    AuditExportError,
    AuditKeyError,
)
from carebound.audit._export import AnchorsFile, ExportReport, export_checkpoints, read_anchors
from carebound.audit._keyring import AuditKeyring
from carebound.audit._log import AuditLog
from carebound.audit._models import (
    GENESIS_HASH,
    MAX_DETAIL_CHARS,
    Actor,
    AuditAction,
    AuditCheckpoint,
    AuditEvent,
    AuditIndexEntry,
    AuditOutcome,
    AuditTrail,
    VerifyResult,
)

__all__ = [
    "GENESIS_HASH",
    "MAX_DETAIL_CHARS",
    "Actor",
    "AnchorsFile",
    "ArchiveReport",
    "AuditAction",
    "AuditCheckpoint",
    "AuditConflictError",
    "AuditCorruptError",
    "AuditDetailError",
    "AuditEvent",
    "AuditExportError",
    "AuditIndexEntry",
    "AuditKeyError",
    "AuditKeyring",
    "AuditLog",
    "AuditOutcome",
    "AuditTrail",
    "ExportReport",
    "VerifyResult",
    "archive_chains",
    "archive_lock",
    "canonical_json",
    "export_checkpoints",
    "read_anchors",
    "verify_archive",
]
