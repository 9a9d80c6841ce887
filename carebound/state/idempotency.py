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

TTL_S = 24 * 3600
"""How long a claimed key is remembered (a retry after that starts a new run)."""


@dataclass(frozen=True)
class Claim:
    """Who holds an idempotency key."""

    run_id: str
    """The run started (or being started) for the key."""
    request: str
    """Digest of the request that claimed it (a retry must send the same request)."""
    new: bool
    """True: this call claimed it now and must start the run."""


def request_digest(body: object) -> str:
    """A digest of a request body (canonical JSON), to tell a retry from a different request."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(prefix: str, principal: str, key: str) -> str:
    digest = hashlib.sha256(f"{principal}\0{key}".encode()).hexdigest()
    return global_key(prefix, "idem", digest)


def claim(
    client: redis.Redis, prefix: str, *, principal: str, key: str, run_id: str, request: str
) -> Claim:
    """Claim ``key`` for ``principal``'s start of ``run_id``, or read who holds it (one round
    trip either way: ``SET NX GET``)."""
    value = json.dumps({"run_id": run_id, "request": request})
    held = client.set(_key(prefix, principal, key), value, nx=True, ex=TTL_S, get=True)
    if held is None:
        return Claim(run_id, request, new=True)
    assert isinstance(held, str | bytes), "SET ... GET answers the value it found"
    stored = json.loads(held)
    return Claim(str(stored["run_id"]), str(stored["request"]), new=False)


def release(client: redis.Redis, prefix: str, *, principal: str, key: str) -> None:
    """Forget a claim whose start was refused before it wrote anything (a retry may start)."""
    client.delete(_key(prefix, principal, key))
