"""The audit trail over a synchronous Redis client."""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
from redis.cluster import RedisCluster

from carebound._wire import binary_client, raise_error, ride_ahead
from carebound.audit import _chain, _verify
from carebound.audit._keyring import AuditKeyring
from carebound.audit._models import (
    Actor,
    AuditAction,
    AuditCheckpoint,
    AuditEvent,
    AuditIndexEntry,
    AuditOutcome,
    AuditTrail,
    DetailValue,
    VerifyResult,
)
from carebound.audit._reindex import reindex
from carebound.state import audit_index
from carebound.state.keys import DEFAULT_PREFIX, text
from carebound.state.lua import Script
from carebound.state.pipeline import Guard, call_script, ride_script_joined
from carebound.state.pipeline import run as run_pipeline


class AuditLog(_chain.LogBase):
    """Append-only, hash-chained audit trail per run, with a global index for review.

    Each run has its own chain in a Redis stream under the run's hash tag; that stream is the
    source of truth and ``verify`` checks it. Every event is also copied to a global stream so a
    reviewer can page through activity across runs with ``recent``.

    Events must never carry PHI beyond a FHIR reference to the patient. The caller decides what
    goes into ``detail`` (a tool name, an approval id, an argument hash, the before/after of a
    low-risk fix); string values longer than 200 characters are refused so documents cannot be
    dumped into the trail.

    Every event is signed (HMAC-SHA256) with the audit key, and each append mirrors the run's
    chain head into a global anchors hash in the same step, so neither a chain rewritten with
    recomputed hashes nor a cut tail with a reset head verifies.

    Args:
        client: a ``redis.Redis`` (with or without ``decode_responses``: events are stored as
            bytes, so a decoding client is read and written through a sibling that does not
            decode, on the same server; a decoding ``RedisCluster`` is refused).
        prefix: key prefix, see ``carebound.state.keys``.
        keyring: the audit keys; by default those the environment configures (see
            ``AuditKeyring``), read on first use.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        keyring: AuditKeyring | None = None,
    ) -> None:
        binary, self._owns_client = binary_client(client, user="the audit log")
        self._client: redis.Redis = binary  # type: ignore[assignment]  # a cluster passes too
        one_step = not isinstance(client, RedisCluster)
        super().__init__(prefix=prefix, keyring=keyring, one_step=one_step)

    @property
    def shares_client(self) -> bool:
        """Whether this log sends on the caller's own client (not a binary sibling it opened):
        then its appends may ride the round trips of the run's other writes, in order."""
        return not self._owns_client

    def close(self) -> None:
        """Close the binary sibling this log opened for a client that decodes replies (never
        the caller's client)."""
        if self._owns_client:
            self._client.close()

    def load_keys(self) -> None:
        """Read the audit keys now (they are otherwise read on first use), so that a caller
        about to write can refuse a bad key configuration before its first write.

        Raises:
            AuditKeyError: the key configuration is malformed or the key file unusable.
        """
        _ = self.keyring

    def record(
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
        before: Callable[[redis.client.Pipeline], object] | None = None,
        ride: bool = False,
    ) -> AuditEvent | None:
        """Append one event to ``run_id``'s chain and the global index.

        The append is one Lua script (one round trip when this process wrote the run's last
        event): it checks that the chain head is still the one the event was hashed against,
        and retries on the new head if another writer got there first. On a single server the
        same script writes the global index entry and the run's anchor; on a Redis Cluster
        (they live in another slot) they are written next, in a second round trip that never
        moves the anchor back (another writer's newer event may have landed in between): if
        that fails, the error propagates and the event stays recorded in the run's chain, the
        source of truth, the anchor one event behind until the run's next event (``verify``
        accepts that lag, since every later event is signed, and notes it).

        Args:
            run_id: the run the event belongs to.
            time: when it happened (timezone-aware), from the caller's clock.
            actor: who acted.
            action: what was done.
            category: the data category touched.
            outcome: how it ended.
            patient_ref: FHIR reference such as ``"Patient/123"``; never a name.
            detail: small flat values (strings up to 200 characters).
            once: a key that makes the append idempotent for the run: an event already
                recorded under it is not recorded again and None is returned (checked in the
                same atomic step as the append, so a replayed step never doubles an event).
            before: queues commands that are sent once, ahead of the append, in the same round
                trip on a single server (on a cluster, and when the event is invalid, they
                are sent on their own first). They must be safe to send twice.
            ride: inside a riding block (``carebound._wire.riding``: a graph segment), on a
                single server, the append rides ahead of the thread's next round trip
                instead of taking its own, and None is returned (see ``_ride``); only on
                the caller's own client, where the run's checkpoints ride behind it.

        Raises:
            AuditDetailError: ``detail`` is too large (a ``ValueError``).
            pydantic.ValidationError: another field is invalid (a ``ValueError``).
            AuditConflictError: other writers kept winning the race.
        """
        try:
            draft = self._draft(
                run_id, time=time, actor=actor, action=action, category=category,
                outcome=outcome, patient_ref=patient_ref, detail=detail,
            )  # fmt: skip
        except ValueError:
            if before is not None:
                run_pipeline(self._client, before)
            raise
        if before is not None and (
            not self._one_step or (ride and self.shares_client and self._ride_before(before))
        ):
            if not self._one_step:
                run_pipeline(self._client, before)
            before = None
        keys = _chain.record_keys(self._prefix, run_id, with_index=self._one_step)
        seq, prev_hash = self._heads.get(run_id)
        if (
            (ride and before is None and self._one_step)
            and self.shares_client  # on a sibling's wire it would land after the checkpoints
            and self._ride(draft, once, keys, seq, prev_hash)
        ):
            return None
        return self._append_chained(draft, once, keys, (seq, prev_hash), before)

    def _ride_before(self, before: Callable[[redis.client.Pipeline], object]) -> bool:
        """Queue ``before``'s commands to ride ahead of the next round trip, ahead of the event
        (False, and nothing queued, outside a riding block). Only on the caller's own client:
        the run's checkpoints go on this wire too, after them, so none past an effect's step
        lands before the effect's record (ledger result, audit event). A crash before it lands
        replays the step: the effect is called again with its key (the connector de-duplicates
        it) and recorded then."""
        pipe = self._client.pipeline(transaction=False)
        before(pipe)
        commands = [args for args, _ in pipe.command_stack]
        if not commands or not ride_ahead(self._client, commands[0], raise_error):
            return False
        for args in commands[1:]:
            ride_ahead(self._client, args, raise_error)
        return True

    def _ride(
        self, draft: _chain.Draft, once: str | None, keys: list[str], seq: int, prev_hash: str
    ) -> bool:
        """Queue the append of ``draft`` to ride ahead of the next round trip (False outside
        a riding block), joined to the run's appends riding just before it (one script call).
        The event is chained on the cached head, and the head moves to it at once, so the events
        after it chain on it. Should it not land (its once key was taken, the head had moved,
        the server lost the script), the head is forgotten and the event appended then, on the
        chain as it is: riders are sent and answered in order, so the events keep their order."""
        event = draft.sealed(seq + 1, prev_hash, self.keyring)
        part = _chain.record_part(event, once)
        run_id = event.run_id

        def landed(reply: Any) -> None:
            current = None if reply is None else _chain.record_reply(reply)
            if current is None and reply is not None:
                return  # appended
            self._heads.forget(run_id)
            if current == _chain.DUPLICATE:
                return
            if current is None:  # the server had lost the script: nothing ran
                current = self._heads.get(run_id)  # re-chained on the head the append finds
            self._append_chained(draft, once, keys, current, None)

        many, args = _chain.RECORD_MANY_SCRIPT, _chain.record_many_args(run_id)
        if not ride_script_joined(self._client, many, keys, args, part=part, landed=landed):
            return False
        self._heads.put(run_id, event.seq, event.hash)
        return True

    def _append_chained(
        self,
        draft: _chain.Draft,
        once: str | None,
        keys: list[str],
        head: tuple[int, str],
        before: Callable[[redis.client.Pipeline], object] | None,
    ) -> AuditEvent | None:
        """Append ``draft`` chained on ``head`` (its seq and hash), re-chaining on the current
        head while other writers get there first (see ``record``)."""
        run_id = draft.run_id
        seq, prev_hash = head
        for attempt in range(_chain.MAX_ATTEMPTS):
            event = draft.sealed(seq + 1, prev_hash, self.keyring)
            args = _chain.record_args(event, once)
            if before is not None:
                fill = _then_append(before, self._append, keys, args)
                reply = run_pipeline(self._client, fill)[-1]
                before = None
            else:
                reply = call_script(self._client, self._append, keys, args)
            current = self._applied(event, reply)
            if current is None:
                return draft.event_of(event)
            if current == _chain.DUPLICATE:
                return None
            seq, prev_hash = current
            _time.sleep(_chain.backoff_s(attempt))
        raise _chain.conflict_error(run_id)

    def queue_record(
        self,
        pipe: redis.client.Pipeline,
        run_id: str,
        *,
        once: str,
        time: datetime,
        actor: Actor,
        action: AuditAction,
        category: str,
        outcome: AuditOutcome,
        patient_ref: str | None = None,
        detail: Mapping[str, DetailValue] | None = None,
        guard: Guard | None = None,
        compact: bool = False,
    ) -> Callable[[Any], bool]:
        """Queue on ``pipe`` the idempotent append of one event, chained on the head this
        process last saw for the run (see ``queue_head``/``prime``), to ride in a round trip
        the caller makes anyway; with ``guard``, appended only if the guard holds then; with
        ``compact``, then the run's stream compacted in the same script call (``queue_compact``).

        Returns a function to call with the script's reply: True when the event is in the
        chain (appended now, or already there under ``once``), False when nothing was
        written (the head had moved, or the guard did not hold): then, if it is still due,
        append it with ``record``.
        """
        draft = self._draft(run_id, time=time, actor=actor, action=action, category=category,
                            outcome=outcome, patient_ref=patient_ref, detail=detail)  # fmt: skip
        seq, prev_hash = self._heads.get(run_id)
        event = draft.sealed(seq + 1, prev_hash, self.keyring)
        keys = _chain.record_keys(self._prefix, run_id, with_index=self._one_step, guard=guard)
        args = _chain.record_args(event, once, guard=guard, nkeys=len(keys), compact=compact)
        self._append.queue(pipe, keys, args)

        def outcome_of(reply: Any) -> bool:
            current = self._applied(event, reply)
            return current is None or current == _chain.DUPLICATE

        return outcome_of

    def _applied(self, event: _chain.Sealed, reply: Any) -> tuple[int, str] | None:
        """Take in the append script's reply for ``event``: None when it was appended (the
        head is cached, and on a cluster the global index and anchor written), else what
        ``record_reply`` says (``DUPLICATE``, or the current head to re-chain on). On a cluster
        a DUPLICATE brings the anchor up to the head too: the send that recorded the event may
        have lost its reply (a pipeline sent again), and with it the anchor's step."""
        current = _chain.record_reply(reply)
        if self._one_step:
            if current is None:
                self._heads.put(event.run_id, event.seq, event.hash)
            return current
        anchors = _chain.anchors_key(self._prefix)
        if current is None:
            self._heads.put(event.run_id, event.seq, event.hash)
            index = _chain.index_key(self._prefix)

            def fill(pipe: redis.client.Pipeline) -> None:
                pipe.xadd(index, _chain.index_fields(event, reply))
                _chain.ANCHOR_SCRIPT.queue(pipe, [anchors], _chain.anchor_args(event))

            was = int(run_pipeline(self._client, fill)[-1])
            # a crash lost the second step of the events between the anchor and this one
            reindex(self._client, self._prefix, event.run_id, after=was, upto=event.seq - 1)
        elif current == _chain.DUPLICATE:
            args = _chain.duplicate_anchor_args(event.run_id, reply)
            if args is not None:
                was = int(call_script(self._client, _chain.ANCHOR_SCRIPT, [anchors], args))
                head = int(args[1])  # the event recorded before may lack its entry too
                reindex(self._client, self._prefix, event.run_id, after=was, upto=head)
        return current

    def repair_index(self, run_id: str) -> list[int]:
        """On a Redis Cluster, index ``run_id``'s events that a crash left out of the global
        index (a recorder stopped between its append and the second step that writes the
        index entry and the anchor) and bring the anchor up to the chain's head; returns the
        seqs indexed. The run's next append does the same; this is for a run that has none
        (``carebound audit RUN --verify`` runs it). Nothing to do on a single server, where
        the append writes all three at once."""
        if self._one_step:
            return []
        head = self._client.hmget(_chain.head_key(self._prefix, run_id), ["seq", "hash"])
        if head[0] is None:
            return []
        seq, anchors = int(head[0]), _chain.anchors_key(self._prefix)
        was = self._client.hget(anchors, run_id)
        after = int(text(was).split(":", 1)[0]) if was is not None else 0
        added = reindex(self._client, self._prefix, run_id, after=after, upto=seq)
        if after < seq:
            args = [run_id, seq, f"{seq}:{text(head[1])}"]
            call_script(self._client, _chain.ANCHOR_SCRIPT, [anchors], args)
        return added

    def queue_compact(self, pipe: redis.client.Pipeline, run_id: str) -> None:
        """Queue the rewrite of ``run_id``'s stream with exact-size nodes on ``pipe`` (when the
        run stops: Redis keeps 4 KB for a stream's newest node), unless it is compact already
        (``COMPACT_SCRIPT``). Nothing of the chain changes: ids, events, head and anchor."""
        keys = [_chain.stream_key(self._prefix, run_id), _chain.head_key(self._prefix, run_id)]
        _chain.COMPACT_SCRIPT.queue(pipe, keys, [_chain.COMPACT_SHAPE_FIELD])

    def queue_head(self, pipe: redis.client.Pipeline, run_id: str) -> Callable[[Any], None]:
        """Queue the read of ``run_id``'s chain head on ``pipe``; returns what to call with
        its reply (``prime`` for the run) so the next append to the run takes one round trip."""
        pipe.hmget(_chain.head_key(self._prefix, run_id), ["seq", "hash"])
        return functools.partial(self.prime, run_id)

    def prime(self, run_id: str, head: Sequence[bytes | str | None]) -> None:
        """Remember the chain head read by ``queue_head`` (a stale head only costs a retry)."""
        seq, hash_ = head
        if seq is not None and hash_ is not None:
            self._heads.put(run_id, int(seq), _chain.text(hash_))

    def events(self, run_id: str, *, strict: bool = True) -> list[AuditEvent]:
        """All events of ``run_id`` in stream order (not verified: use ``verify`` for that);
        with ``strict=False``, entries that cannot be read are left out (``verify`` reports
        them) instead of raising.

        Raises:
            AuditCorruptError: a stored entry cannot be read (``strict`` only).
        """
        entries = self._client.xrange(_chain.stream_key(self._prefix, run_id)) or []
        if not strict:
            return _verify.readable_events(entries)
        return [_chain.parse_event(_chain.entry_event(fields)) for _, fields in entries]

    def verify(
        self,
        run_id: str,
        *,
        exists: bool = False,
        checkpoints: Sequence[AuditCheckpoint] = (),
    ) -> VerifyResult:
        """Check ``run_id``'s chain: hashes, MACs, links, gaps, order, the stored head and the
        run's anchor, and the exported ``checkpoints`` of the run if given; ``exists``: the
        run is known to exist, so an empty chain is a deleted one."""
        return self.trail(run_id, exists=exists, checkpoints=checkpoints).verify

    def trail(
        self,
        run_id: str,
        *,
        exists: bool = False,
        checkpoints: Sequence[AuditCheckpoint] = (),
    ) -> AuditTrail:
        """``run_id``'s readable events and the check of its chain (see ``verify``), read
        together: an unreadable entry is reported as a broken chain, never raised."""
        entries, head, anchor = self._read(run_id)
        result = _verify.verify_chain(
            run_id,
            entries,
            head,
            keyring=self.keyring,
            anchor=anchor,
            exists=exists,
            checkpoints=checkpoints,
        )
        return AuditTrail(events=_verify.readable_events(entries), verify=result)

    def raw_chain(self, run_id: str) -> tuple[list[Any], Any, Any]:
        """The run's stream entries, head and anchor exactly as stored (to archive them)."""
        return self._read(run_id)

    def _read(self, run_id: str) -> tuple[list[Any], Any, Any]:
        """The run's stream, head and anchor (one round trip; the anchor lives in another
        slot, so on a cluster it is read next)."""
        anchors = _chain.anchors_key(self._prefix)
        with self._client.pipeline(transaction=True) as pipe:
            pipe.xrange(_chain.stream_key(self._prefix, run_id))
            pipe.hmget(_chain.head_key(self._prefix, run_id), ["seq", "hash"])
            if self._one_step:
                pipe.hget(anchors, run_id)
            replies = pipe.execute()
        anchor = replies[2] if self._one_step else self._client.hget(anchors, run_id)
        return replies[0] or [], replies[1], anchor

    def recent(self, limit: int, *, after: str | None = None) -> list[AuditIndexEntry]:
        """Page through the global index, oldest first.

        Args:
            limit: most entries to return.
            after: an ``entry_id`` from an earlier page: return entries recorded after it.
                Without it, return the ``limit`` most recent entries.
        """
        _chain.check_limit(limit)
        key = _chain.index_key(self._prefix)
        if after is None:
            entries = (self._client.xrevrange(key, count=limit) or [])[::-1]
        else:
            entries = self._client.xrange(key, min=f"({after}", count=limit) or []
        return _chain.index_entries(audit_index.resolve(self._client, self._prefix, entries))


def _then_append(
    before: Callable[[redis.client.Pipeline], object],
    append: Script,
    keys: list[str],
    args: list[bytes | str],
) -> Callable[[redis.client.Pipeline], None]:
    """Fill a pipeline with ``before``'s commands, then the append script."""

    def fill(pipe: redis.client.Pipeline) -> None:
        before(pipe)
        append.queue(pipe, keys, args)

    return fill
