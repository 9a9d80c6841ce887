"""The error tree of carebound.

Every error a caller can act on derives from one base and says how to fix the problem::

    CareboundError
    ├── StoreUnavailableError     the Redis/Valkey store cannot be reached or started
    │   └── StoreWriteRefusedError  it answers but refuses writes (disk, read-only, memory)
    ├── LeaseLostError            another worker holds the run; this process may not write it
    ├── NotFoundError             no run or approval with that id
    ├── RunStateError             the run cannot do that now (e.g. decide a finished run)
    └── DecisionRefusedError      a reviewer decision was refused (role, own run, stale, ...)
        └── AlreadyDecidedError   someone else decided first

Control signals (a hold for approval, a denied tool call) are *not* errors: they are part of a
run's normal result.
"""

from __future__ import annotations


class CareboundError(Exception):
    """Base class of every carebound error.

    Args:
        message: what went wrong, and where.
        hint: how to fix it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)


class StoreUnavailableError(CareboundError):
    """The run store (Redis or the embedded Valkey server) cannot be reached or started."""


class StoreWriteRefusedError(StoreUnavailableError):
    """The store answers but refuses to write: it cannot save to disk (MISCONF), it is a
    read-only replica (READONLY), it is out of memory (OOM), or it lacks the replicas its
    ``min-replicas-to-write`` asks for (NOREPLICAS)."""


class LeaseLostError(CareboundError):
    """This process no longer holds the run's lease; another worker owns its checkpoints."""


class NotFoundError(CareboundError):
    """No run or approval has that id."""


class RunStateError(CareboundError):
    """The run is not in a state that allows the operation."""


class DecisionRefusedError(CareboundError):
    """A reviewer's decision was refused.

    ``code`` is one of: ``unknown_reviewer``, ``wrong_role``, ``own_run``, ``stale``,
    ``same_approver``, ``invalid_edit``, ``edit_beyond_grant``, ``already_decided``.
    """

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        self.code = code
        super().__init__(message, hint=hint)


class AlreadyDecidedError(DecisionRefusedError):
    """Another reviewer decided this approval first."""

    def __init__(self, message: str, *, decided_by: str, decided_at: str) -> None:
        self.decided_by = decided_by
        self.decided_at = decided_at
        super().__init__(message, code="already_decided")
