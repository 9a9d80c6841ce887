"""Claiming the id a start names itself (``Runner.start(run_id=...)``), so two starts that
name the same id at the same moment cannot both pass the "no run has it" check and the later
one overwrite the first's record (requester, case, status) while its trail stays the first's.

A claim holds the start's identity (a digest of its agent, requester, pack and case): the
same start sent again (a retry, or a process that died before storing the run started again)
takes its own claim over; any other start is refused while it lasts."""

from __future__ import annotations

import contextlib

import redis

from carebound.state.keys import run_key, text
from carebound.state.trips import Client

CLAIM_MS = 30_000
"""How long a claim holds an id for the start that made it: longer than seeding a world and
storing the run take; a start that died with it lets the id go again after this."""


def claim_run_id(client: Client, prefix: str, run_id: str, identity: str) -> bool:
    """Claim ``run_id`` for the start ``identity`` names, in one round trip: False when a run
    has it, or a different start claimed it less than :data:`CLAIM_MS` ago. The round trip
    that stores the run deletes the claim after the record (``RunStore.create(claimed=True)``):
    the record holds the id from then on."""
    pipe = client.pipeline(transaction=False)
    pipe.hexists(run_key(prefix, run_id, "run"), "run_id")
    pipe.set(run_key(prefix, run_id, "claim"), identity, nx=True, px=CLAIM_MS, get=True)
    exists, held = pipe.execute()
    if exists and held is None:
        release_run_id(client, prefix, run_id)  # a refused start leaves no key
    return not exists and (held is None or text(held) == identity)


def release_run_id(client: Client, prefix: str, run_id: str) -> None:
    """Let ``run_id`` go after its start was refused before storing the run, so the id is free
    at once. A store that does not answer is left alone: the claim lapses by itself after
    :data:`CLAIM_MS`, and the error the start met is the one to report."""
    with contextlib.suppress(redis.RedisError):
        client.delete(run_key(prefix, run_id, "claim"))
