"""The notifier's state: where it is in the audit index, what it sent, what to retry.

Layout (all in the ``{notify}`` hash slot): ``cursor`` (the last audit index entry looked at),
``sent`` (a hash: notice key -> JSON of its delivery: status, attempts, next try), ``retry`` (a
sorted set of notice keys by next try, epoch ms) and ``log`` (a capped stream of deliveries:
ids, kinds, roles and outcomes; never PHI). A notice is claimed with ``HSETNX`` before it is
sent, so two notifiers never send one twice.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from carebound.state import audit_index
from carebound.state.keys import DEFAULT_PREFIX, audit_index_key, inbox_key, notify_key, text
from carebound.state.lua import script

_CLAIM = script("notify_claim")
LOG_MAXLEN = 10_000


class NotifyStore:
    """The notifier's keys for one key prefix."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix
        self._index = audit_index_key(prefix)
        self._inbox = inbox_key(prefix, "all")
        self._cursor = notify_key(prefix, "cursor")
        self._sent = notify_key(prefix, "sent")
        self._retry = notify_key(prefix, "retry")
        self._log = notify_key(prefix, "log")

    def new_events(self, count: int) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``count`` audit events after the cursor, and the id of the last one."""
        cursor = self._r.get(self._cursor)
        start = f"({text(cursor)}" if cursor is not None else "-"
        entries = self._r.xrange(self._index, min=start, count=count)
        if not entries:
            return [], None
        events = [
            json.loads(text(raw)) for _, raw in audit_index.resolve(self._r, self._prefix, entries)
        ]
        return events, text(entries[-1][0])

    def advance(self, last: str) -> None:
        """Move the cursor past ``last`` (its notices are claimed already)."""
        self._r.set(self._cursor, last)

    def due_soon(self, now_ms: int, until_ms: int) -> list[str]:
        """Pending holds whose deadline falls within ``now_ms``..``until_ms``."""
        return [text(a) for a in self._r.zrangebyscore(self._inbox, now_ms, until_ms)]

    def claim(self, key: str, notice: dict[str, Any], *, retry_at_ms: int) -> bool:
        """Take ``key`` for sending, with a retry at ``retry_at_ms`` should it not be confirmed
        sent by then (False: it was taken before, by this or another process)."""
        state = json.dumps({"status": "pending", "attempts": 0, "notice": notice}, sort_keys=True)
        return bool(_CLAIM(self._r, [self._sent, self._retry], [key, state, retry_at_ms]))

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._r.hget(self._sent, key)
        return None if raw is None else dict(json.loads(text(raw)))

    def record(
        self, key: str, state: dict[str, Any], *, retry_at_ms: int | None, log: dict[str, str]
    ) -> None:
        """Store how a delivery went, schedule a retry (or drop it), and log it."""
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(self._sent, key, json.dumps(state, sort_keys=True))
            if retry_at_ms is None:
                pipe.zrem(self._retry, key)
            else:
                pipe.zadd(self._retry, {key: retry_at_ms})
            pipe.xadd(self._log, dict(log), maxlen=LOG_MAXLEN, approximate=True)  # type: ignore[arg-type]
            pipe.execute()

    def due_retries(self, now_ms: int) -> list[str]:
        """Deliveries to try again now."""
        return [text(k) for k in self._r.zrangebyscore(self._retry, "-inf", now_ms)]

    def log(self, count: int = 100) -> list[dict[str, str]]:
        """The newest deliveries, newest first."""
        entries = self._r.xrevrange(self._log, count=count) or []
        return [{text(k): text(v) for k, v in (fields or {}).items()} for _, fields in entries]
