"""The audit trail over an asyncio Redis client (the twin of `_log`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from carebound._async_wire import async_binary_client
from carebound.audit import _chain, _verify
from carebound.audit._keyring import AuditKeyring
from carebound.audit._models import (
    Actor,
    AuditAction,
    AuditCheckpoint,
    AuditEvent,
    AuditIndexEntry,
    AuditOutcome,
    DetailValue,
    VerifyResult,
)
from carebound.audit._reindex import areindex
from carebound.state import audit_index
from carebound.state.keys import DEFAULT_PREFIX, text


class AsyncAuditLog(_chain.LogBase):
    """The asyncio twin of ``AuditLog``: the same trail and keys, methods as coroutines.

    Events must never carry PHI beyond a FHIR reference to the patient; see ``AuditLog``.

    Args:
        client: a ``redis.asyncio.Redis`` (with or without ``decode_responses``: see
            ``AuditLog``).
        prefix: key prefix, see ``carebound.state.keys``.
        keyring: the audit keys; by default those the environment configures.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        keyring: AuditKeyring | None = None,
    ) -> None:
        self._client, self._owns_client = async_binary_client(client, user="the audit log")
        one_step = not isinstance(client, AsyncRedisCluster)
        super().__init__(prefix=prefix, keyring=keyring, one_step=one_step)

    async def aclose(self) -> None:
        """Close the binary sibling this log opened for a client that decodes replies (never
        the caller's client)."""
        if self._owns_client:
            await self._client.aclose()

    async def record(
        self,
        run_id: str,
        *,
        time: datetime,
        actor: Actor,
        action: AuditAction,
        category: str,
        outcome: AuditOutcome,
        patient_ref: str | None = None,
        detail: Mapping[str, DetailValue] | None = None,
        once: str | None = None,
    ) -> AuditEvent | None:
        """Append one event to ``run_id``'s chain and the global index; see ``AuditLog.record``."""
        draft = self._draft(run_id, time=time, actor=actor, action=action, category=category,
                            outcome=outcome, patient_ref=patient_ref, detail=detail)  # fmt: skip
        keys = _chain.record_keys(self._prefix, run_id, with_index=self._one_step)
        seq, prev_hash = self._heads.get(run_id)
        for attempt in range(_chain.MAX_ATTEMPTS):
            event = draft.sealed(seq + 1, prev_hash, self.keyring)
            reply = await self._append.acall(self._client, keys, _chain.record_args(event, once))
            current = _chain.record_reply(reply)
            if current is None:
                self._heads.put(run_id, event.seq, event.hash)
                if not self._one_step:
                    index = _chain.index_key(self._prefix)
                    await self._client.xadd(index, _chain.index_fields(event, reply))
                    was = await self._anchor(_chain.anchor_args(event))
                    # a crash lost the second step of the events between the anchor and this one
                    await areindex(self._client, self._prefix, run_id, after=was, upto=seq)
                return draft.event_of(event)
            if current == _chain.DUPLICATE:
                args = _chain.duplicate_anchor_args(run_id, reply)
                if args is not None and not self._one_step:  # see AuditLog._applied
                    was = await self._anchor(args)
                    head = int(args[1])  # the event recorded before may lack its entry too
                    await areindex(self._client, self._prefix, run_id, after=was, upto=head)
                return None
            seq, prev_hash = current
            await asyncio.sleep(_chain.backoff_s(attempt))
        raise _chain.conflict_error(run_id)

    async def _anchor(self, args: Sequence[object]) -> int:
        """Bring the run's anchor up (a cluster's second step); returns the seq it was at."""
        anchors = [_chain.anchors_key(self._prefix)]
        return int(await _chain.ANCHOR_SCRIPT.acall(self._client, anchors, list(args)))

    async def repair_index(self, run_id: str) -> list[int]:
        """Index ``run_id``'s events a crash left out of a Redis Cluster's global index and
        bring the anchor up; returns the seqs indexed. See ``AuditLog.repair_index``."""
        if self._one_step:
            return []
        head = await self._client.hmget(_chain.head_key(self._prefix, run_id), ["seq", "hash"])
        if head[0] is None:
            return []
        seq = int(head[0])
        was = await self._client.hget(_chain.anchors_key(self._prefix), run_id)
        after = int(text(was).split(":", 1)[0]) if was is not None else 0
        added = await areindex(self._client, self._prefix, run_id, after=after, upto=seq)
        if after < seq:
            await self._anchor([run_id, seq, f"{seq}:{text(head[1])}"])
        return added

    async def events(self, run_id: str) -> list[AuditEvent]:
        """All events of ``run_id`` in stream order; see ``AuditLog.events``."""
        entries = await self._client.xrange(_chain.stream_key(self._prefix, run_id)) or []
        return [_chain.parse_event(_chain.entry_event(fields)) for _, fields in entries]

    async def verify(
        self,
        run_id: str,
        *,
        exists: bool = False,
        checkpoints: Sequence[AuditCheckpoint] = (),
    ) -> VerifyResult:
        """Check ``run_id``'s chain; see ``AuditLog.verify``."""
        anchors = _chain.anchors_key(self._prefix)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xrange(_chain.stream_key(self._prefix, run_id))
            pipe.hmget(_chain.head_key(self._prefix, run_id), ["seq", "hash"])
            if self._one_step:
                pipe.hget(anchors, run_id)
            replies = await pipe.execute()
        anchor = replies[2] if self._one_step else await self._client.hget(anchors, run_id)
        return _verify.verify_chain(
            run_id,
            replies[0] or [],
            replies[1],
            keyring=self.keyring,
            anchor=anchor,
            exists=exists,
            checkpoints=checkpoints,
        )

    async def recent(self, limit: int, *, after: str | None = None) -> list[AuditIndexEntry]:
        """Page through the global index, oldest first; see ``AuditLog.recent``."""
        _chain.check_limit(limit)
        key = _chain.index_key(self._prefix)
        if after is None:
            newest = await self._client.xrevrange(key, count=limit) or []
            entries = newest[::-1]
        else:
            entries = await self._client.xrange(key, min=f"({after}", count=limit) or []
        return _chain.index_entries(await audit_index.aresolve(self._client, self._prefix, entries))
