"""What real outreach channels keep in Redis: attempt numbers, receipts, open requests.

Per run (under its hash tag)::

    {prefix}:{<run>}:outreach:real:attempts     hash: request id -> sends so far
    {prefix}:{<run>}:outreach:real:attempt_of   hash: idempotency key -> its attempt number
    {prefix}:{<run>}:outreach:real:receipts     hash: idempotency key -> receipt JSON
    {prefix}:{<run>}:outreach:real:open         hash: open request (e.g. a CDex Task id) -> JSON

and one index across runs, ``{prefix}:outreach:polling`` (a set of run ids), of the runs whose
open requests the worker's sweep polls for replies.
"""

from __future__ import annotations

import redis

from carebound.state.keys import DEFAULT_PREFIX, global_key, run_key, text
from carebound.state.lua import script

_ATTEMPT = script("outreach_attempt")


class OutreachStore:
    """Redis state of one run's real outreach channels (see the module docstring)."""

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self.run_id = run_id
        self._attempts = run_key(prefix, run_id, "outreach", "real", "attempts")
        self._attempt_of = run_key(prefix, run_id, "outreach", "real", "attempt_of")
        self._receipts = run_key(prefix, run_id, "outreach", "real", "receipts")
        self._open = run_key(prefix, run_id, "outreach", "real", "open")
        self._polling = polling_key(prefix)

    def attempt(self, request_id: str, idempotency_key: str) -> int:
        """The attempt number of the send ``idempotency_key`` for ``request_id`` (the same
        number every time it is asked for the same key)."""
        return int(
            _ATTEMPT(self._r, [self._attempts, self._attempt_of], [request_id, idempotency_key])
        )

    def receipt(self, idempotency_key: str) -> str | None:
        """The receipt JSON of a send that went out, or None."""
        raw = self._r.hget(self._receipts, idempotency_key)
        return None if raw is None else text(raw)

    def keep_receipt(self, idempotency_key: str, receipt_json: str) -> str:
        """Keep a send's receipt (the first one kept wins); returns the kept one."""
        if self._r.hsetnx(self._receipts, idempotency_key, receipt_json):
            return receipt_json
        return self.receipt(idempotency_key) or receipt_json

    def open_request(self, ref: str, data_json: str) -> None:
        """Remember an open request (e.g. ``Task/123``) and list the run for polling."""
        self._r.hset(self._open, ref, data_json)
        self._r.sadd(self._polling, self.run_id)

    def open_requests(self) -> dict[str, str]:
        """Open requests: ref -> the JSON given when it was opened."""
        return {text(k): text(v) for k, v in self._r.hgetall(self._open).items()}

    def close_request(self, ref: str) -> bool:
        """Close an open request; True for exactly one caller (it hands out the reply)."""
        closed = bool(self._r.hdel(self._open, ref))
        if closed and not self._r.hlen(self._open):
            self._r.srem(self._polling, self.run_id)
        return closed


def polling_key(prefix: str) -> str:
    """The set of run ids whose open outreach requests the sweep polls."""
    return global_key(prefix, "outreach", "polling")


def runs_to_poll(client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The runs with open outreach requests (sorted)."""
    return sorted(text(m) for m in client.smembers(polling_key(prefix)))


def stop_polling(client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
    """Drop a run from the polling index (it ended)."""
    client.srem(polling_key(prefix), run_id)
