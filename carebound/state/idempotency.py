"""Idempotent run starts: a retried ``POST /api/runs`` starts no second run.

A start that names an idempotency key (the ``Idempotency-Key`` header, or a client run id)
first claims it, atomically (``SET NX``), for the run id it will start and a digest of the
request; a retry with the same key finds the claim and is answered with that run. The claim
is kept for a day (``TTL_S``), per principal, so two callers' keys never collide::

    {prefix}:idem:<sha256 of principal NUL key>   string: JSON {run_id, request}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

from carebound.state.keys import global_key
from carebound.state.lua import script

TTL_S = 24 * 3600
"""How long a claimed key is remembered (a retry after that starts a new run)."""

START_GRACE_S = 120
"""How old a claim whose run is not stored must be before a retry may take it over: longer
than any start takes to store its run (a start that is only slow must not be started twice)."""

_TAKE_OVER = script("idempotency_take_over")


@dataclass(frozen=True)
class Claim:
    """Who holds an idempotency key."""

    run_id: str
    """The run started (or being started) for the key."""
    request: str
    """Digest of the request that claimed it (a retry must send the same request)."""
    new: bool
    """True: this call claimed it now and must start the run."""
    at_ms: int | None = None
    """When it was claimed (ms since the epoch; None in a claim from before it was kept)."""
    stored: str = ""
    """The claim as stored (what :func:`take_over` compares)."""


def request_digest(body: object) -> str:
    """A digest of a request body (canonical JSON), to tell a retry from a different request."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(prefix: str, principal: str, key: str) -> str:
    digest = hashlib.sha256(f"{principal}\0{key}".encode()).hexdigest()
    return global_key(prefix, "idem", digest)


def claim(
    client: redis.Redis,
    prefix: str,
    *,
    principal: str,
    key: str,
    run_id: str,
    request: str,
    now_ms: int,
) -> Claim:
    """Claim ``key`` for ``principal``'s start of ``run_id`` at ``now_ms``, or read who holds
    it (one round trip either way: ``SET NX GET``)."""
    value = json.dumps({"run_id": run_id, "request": request, "at": now_ms})
    held = client.set(_key(prefix, principal, key), value, nx=True, ex=TTL_S, get=True)
    if held is None:
        return Claim(run_id, request, new=True, at_ms=now_ms, stored=value)
    assert isinstance(held, str | bytes), "SET ... GET answers the value it found"
    stored = json.loads(held)
    at = stored.get("at")
    return Claim(
        str(stored["run_id"]),
        str(stored["request"]),
        new=False,
        at_ms=int(at) if at is not None else None,
        stored=held.decode() if isinstance(held, bytes) else held,
    )


def take_over(
    client: redis.Redis, prefix: str, *, principal: str, key: str, stale: Claim, now_ms: int
) -> bool:
    """Take over ``stale``, a claim whose run is not stored, when it is at least
    ``START_GRACE_S`` old: the caller then starts its run (same run id). False when it is
    younger, or another retry took it over first (one round trip then)."""
    if stale.at_ms is None or now_ms - stale.at_ms < START_GRACE_S * 1000:
        return False
    value = json.dumps({"run_id": stale.run_id, "request": stale.request, "at": now_ms})
    return bool(_TAKE_OVER(client, [_key(prefix, principal, key)], [stale.stored, value, TTL_S]))


def release(client: redis.Redis, prefix: str, *, principal: str, key: str) -> None:
    """Forget a claim whose start was refused before it wrote anything (a retry may start)."""
    client.delete(_key(prefix, principal, key))
