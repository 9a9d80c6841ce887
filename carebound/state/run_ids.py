"""Claiming the id a start names itself (``Runner.start(run_id=...)``), so two starts that
name the same id at the same moment cannot both pass the "no run has it" check and the later
one overwrite the first's record (requester, case, status) while its trail stays the first's."""

from __future__ import annotations

import contextlib

import redis

from carebound.state.keys import run_key
from carebound.state.trips import Client

CLAIM_MS = 30_000
"""How long a claim holds an id for the start that made it: longer than seeding a world and
storing the run take; a start that died with it lets the id go again after this."""


def claim_run_id(client: Client, prefix: str, run_id: str) -> bool:
    """Claim ``run_id`` for a start, in one round trip: False when a run has it or another
    start claimed it less than :data:`CLAIM_MS` ago. The round trip that stores the run
    deletes the claim after the record (``RunStore.create(claimed=True)``): the record holds
    the id from then on."""
    pipe = client.pipeline(transaction=False)
    pipe.hexists(run_key(prefix, run_id, "run"), "run_id")
    pipe.set(run_key(prefix, run_id, "claim"), b"", nx=True, px=CLAIM_MS)
    exists, claimed = pipe.execute()
    if exists and claimed:
        release_run_id(client, prefix, run_id)  # a refused start leaves no key
    return bool(claimed) and not exists


def release_run_id(client: Client, prefix: str, run_id: str) -> None:
    """Let ``run_id`` go after its start was refused before storing the run, so the id is free
    at once. A store that does not answer is left alone: the claim lapses by itself after
    :data:`CLAIM_MS`, and the error the start met is the one to report."""
    with contextlib.suppress(redis.RedisError):
        client.delete(run_key(prefix, run_id, "claim"))
