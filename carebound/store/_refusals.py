"""Error replies of a server that answers but will not write, named with their fix.

A full disk, a read-only replica or a memory limit makes every write fail at once with an
error reply (``MISCONF``, ``READONLY``, ``OOM``, ``NOREPLICAS``). Those are not outages to wait
out: the operator has to act, so they are reported as they are, with what to do.
"""

from __future__ import annotations

import redis

from carebound._errors import StoreWriteRefusedError

_FIXES: tuple[tuple[str, str, str], ...] = (
    (
        "MISCONF",
        "the run store cannot save to disk (full disk or unwritable data directory) and "
        "refuses writes until it can",
        "free disk space or fix the permissions of the server's data directory (its 'dir' "
        "setting; CAREBOUND_HOME for the embedded server), then check its log; writes resume "
        "once a save succeeds",
    ),
    (
        "READONLY",
        "the run store is a read-only replica",
        "point CAREBOUND_REDIS_URL at the primary, not a replica",
    ),
    (
        "OOM",
        "the run store is out of memory (maxmemory reached) and refuses writes",
        "raise the server's maxmemory or free memory; carebound needs 'noeviction' and room "
        "to write",
    ),
    (
        "NOREPLICAS",
        "the run store has not enough replicas connected (min-replicas-to-write) and "
        "refuses writes",
        "reconnect its replicas, or lower the server's min-replicas-to-write",
    ),
)


def _code_of(exc: redis.ResponseError) -> str | None:
    # redis-py strips the code of the replies it has a class for and keeps it otherwise.
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "READONLY"
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return "OOM"
    head = str(exc).split(" ", 1)[0]
    return head if head in ("MISCONF", "NOREPLICAS", "READONLY", "OOM") else None


def write_refusal(exc: BaseException) -> StoreWriteRefusedError | None:
    """``exc`` as a :class:`StoreWriteRefusedError` when it is such an error reply (a Lua
    script's error carries the reply of the write it made), else None."""
    if not isinstance(exc, redis.ResponseError):
        return None
    code = _code_of(exc)
    if code is None:
        for name, _, _ in _FIXES:  # the reply of a write inside a script
            if f"-{name} " in str(exc) or f" {name} " in str(exc) or str(exc).startswith(name):
                code = name
                break
    for name, message, hint in _FIXES:
        if name == code:
            return StoreWriteRefusedError(f"{message} ({name})", hint=hint)
    return None
