"""The effect ledger: every effect happens at most once.

LangGraph re-runs a node from its start on resume and after a crash. Before an effect runs, its
idempotency key is reserved in the run's ledger (one atomic script); a replayed node finds the
key and gets the recorded result instead of running the effect again. A key found *reserved*
but never completed means the process died between reserve and effect: the effect is run again
with the same key, and the connector's de-duplication on that key makes it a no-op if the first
attempt got through.

    {prefix}:{run}:ledger   hash: idempotency key -> entry JSON (deflated once completed)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict

from carebound._errors import LeaseLostError
from carebound.state import stored_json
from carebound.state.keys import DEFAULT_PREFIX, lease_key, run_key, text
from carebound.state.lua import script
from carebound.state.pipeline import call_script, run


class LedgerEntry(BaseModel):
    """One effect as recorded in the ledger."""

    model_config = ConfigDict(frozen=True)

    key: str
    tool: str
    status: Literal["reserved", "done", "failed"]
    attempts: int = 1
    result: Any = None
    error: str | None = None
    error_class: str | None = None
    """The exception class a failed effect raised (its message is not kept: it may hold PHI)."""
    reserved_at: datetime
    done_at: datetime | None = None


_RESERVE = script("ledger_reserve")

# A completed entry is stored deflated (stored_json.LEDGER_ENTRY: its result can be long; the
# reserve script never reads one again). A reserved entry stays plain JSON, as the script reads it.


def _entry(stored: bytes | str) -> LedgerEntry:
    return LedgerEntry.model_validate_json(stored_json.LEDGER_ENTRY.unpack(stored))


class EffectLedger:
    """Per-run effect ledger in Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix

    def _key(self, run_id: str) -> str:
        return run_key(self._prefix, run_id, "ledger")

    def reserve(
        self, run_id: str, key: str, tool: str, now: datetime, *, fencing_token: int | None = None
    ) -> LedgerEntry | None:
        """Reserve ``key``. Returns None when newly reserved (run the effect), else the existing
        entry: ``done`` (use its result) or ``reserved`` (a crashed attempt: run it again with
        the same key). With ``fencing_token``, nothing is reserved and
        :class:`carebound._errors.LeaseLostError` is raised unless the run's lease still has
        that token (a driver that lost the run makes no effect)."""
        fresh = LedgerEntry(key=key, tool=tool, status="reserved", reserved_at=now)
        token = "" if fencing_token is None else str(fencing_token)
        keys = [self._key(run_id), lease_key(self._prefix, run_id)]
        raw = call_script(self._r, _RESERVE, keys, [key, fresh.model_dump_json(), token])
        if isinstance(raw, list):
            held = text(raw[1]) or "none"
            raise LeaseLostError(
                f"effect {tool} of run {run_id} not reserved: fencing token {token} does not "
                f"match the run's lease token ({held})",
                hint="another worker owns the run now and makes its effects; nothing to do here",
            )
        return _entry(raw) if raw else None

    def has(self, run_id: str, key: str) -> bool:
        """Whether ``key`` was ever reserved in the run's ledger (reserved, done or failed)."""
        return bool(run(self._r, lambda pipe: pipe.hexists(self._key(run_id), key))[0])

    def complete(
        self,
        run_id: str,
        entry_key: str,
        tool: str,
        result: Any,
        *,
        reserved_at: datetime,
        now: datetime,
        attempts: int = 1,
        error: str | None = None,
        error_class: str | None = None,
        pipe: redis.client.Pipeline | None = None,
    ) -> LedgerEntry:
        """Record the effect's result (or failure); only queued when ``pipe`` is given."""
        entry = LedgerEntry(
            key=entry_key,
            tool=tool,
            status="failed" if error else "done",
            attempts=attempts,
            result=result,
            error=error,
            error_class=error_class,
            reserved_at=reserved_at,
            done_at=now,
        )
        stored = stored_json.LEDGER_ENTRY.pack(entry.model_dump_json())
        (pipe or self._r).hset(self._key(run_id), entry_key, stored)
        return entry

    def entries(self, run_id: str) -> list[LedgerEntry]:
        """Every effect of a run, oldest first."""
        return self.parse_entries(self._r.hgetall(self._key(run_id)))

    def queue_entries(
        self, pipe: redis.client.Pipeline, run_id: str
    ) -> Callable[[Any], list[LedgerEntry]]:
        """Queue the read of ``entries`` on ``pipe``; returns the parser of its reply
        (``parse_entries``)."""
        pipe.hgetall(self._key(run_id))
        return self.parse_entries

    @staticmethod
    def parse_entries(raw: Mapping[Any, Any]) -> list[LedgerEntry]:
        """Ledger entries, oldest first, from the stored hash."""
        items = [_entry(v) for v in raw.values()]
        return sorted(items, key=lambda e: e.reserved_at)
