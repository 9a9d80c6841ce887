"""The engine's multi-store round trips, each named for its intent.

A reviewer's decide reaches the run's next stop in a handful of Redis round trips because the
reads and writes of several stores ride in one pipeline. The composition lives here, next to
the stores, so the engine (:mod:`carebound.engine`) speaks in intent ("take the run's lease
and read what goes with it", "settle the run") and never indexes replies by position. Each
trip returns a typed result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from carebound._wire import raise_error, ride_ahead, riding
from carebound.approvals import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalStore,
    ApprovalView,
    DecideStepReply,
    Decision,
)
from carebound.approvals._edits import ArgChange
from carebound.audit import AuditLog
from carebound.checkpoint import RedisSaver
from carebound.clock import Clock, to_ms
from carebound.state.keys import global_key, text
from carebound.state.lease import Lease, RunLease
from carebound.state.ledger import EffectLedger, LedgerEntry
from carebound.state.pipeline import Guard, run_parsed
from carebound.state.pipeline import run as run_pipeline
from carebound.state.retention import queue_retention
from carebound.state.runs import FINAL_STATUSES, PinnedReply, RunRecord, RunStore, parse_pinned

Client = redis.Redis
"""The store client the engine is given (a redis-py client)."""
Pipeline = redis.client.Pipeline
"""A queued round trip (for the graph's ``before`` hooks)."""

Pinned = PinnedReply
"""A run's pinned policy pack, case (inflated) and world marker (None: absent)."""


@dataclass(frozen=True)
class LeaseReads:
    """What taking a run's lease read in the same round trip."""

    lease: Lease | None
    """None: another process holds it (or the run is unknown)."""
    record: RunRecord | None
    """None: no such run (a lease taken for it was given back)."""
    decision_audited: bool
    """The decision's audit event passed in is in the chain (False: append it again)."""
    pinned: Pinned | None = None
    """The run's pinned data, when asked for (``cold``) and the lease was taken."""
    latest: Any = None
    """The run's newest checkpoint as read for ``RedisSaver.primed`` (None: not read)."""


@dataclass(frozen=True, kw_only=True)
class AuditAppend:
    """An audit event to append, once (idempotent on ``once``), in a round trip."""

    run_id: str
    once: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class DecideStep:
    """The store's decide step of a reviewer's decision (see ``ApprovalStore.queue_decide``)."""

    approval_id: str
    decision: Decision
    now: datetime
    status: ApprovalStatus
    escalate_deadline: datetime | None
    decide_id: str
    approver: str
    edited: ApprovalRequest | None
    changes: Sequence[ArgChange]


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """Where a run stopped, to store under its lease as one round trip."""

    record: RunRecord
    """The run's updated record (fenced: written only while the lease is held)."""
    stored: RunRecord | None
    """The record as the lease's round trip read it (what the run's hash holds while the
    lease is held: only the fields that differ are written), or None (every field)."""
    lease: Lease
    wait: tuple[list[str], datetime | None] | None = None
    """A wait's match keys and deadline to register (None: not waiting)."""
    unmark: bool = False
    """Drop the run's drive mark (it stopped somewhere stable)."""
    unindex: tuple[str, str] | None = None
    """An approval (id, role) to drop from the inbox."""
    read_pending: str | None = None
    """An approval to read back (the hold the run parked on)."""
    read_has_event: bool = False
    """Read whether an event is queued for the run (it parked on a wait)."""
    audit: AuditAppend | None = None
    """An audit event to append under the lease (the run's change of status), idempotent."""


@dataclass(frozen=True)
class Settled:
    """What a :class:`Settlement` round trip stored and read back."""

    written: bool
    """False: the lease was lost, the record was not written."""
    effects: list[LedgerEntry] = field(default_factory=list)
    pending: ApprovalView | None = None
    has_event: bool = False
    audited: bool = True
    """False: ``Settlement.audit`` was not appended (the chain head had moved): append it
    again with ``AuditLog.record``."""


class Trips:
    """The round trips that span several stores, for one client and key prefix."""

    def __init__(
        self,
        client: Client,
        *,
        prefix: str,
        clock: Clock,
        owner: Callable[[], str],
        lease_ttl_ms: int,
        runs: RunStore,
        approvals: ApprovalStore,
        ledger: EffectLedger,
        audit_log: AuditLog,
        leases: RunLease,
        saver: RedisSaver,
        retention_s: int = 0,
    ) -> None:
        self.client = client
        self._prefix = prefix
        self.retention_s = retention_s
        """Seconds an ended run's keys are kept (0: for ever; :mod:`carebound.state.retention`)."""
        self.clock = clock
        self._owner = owner
        self._lease_ttl_ms = lease_ttl_ms
        self.runs = runs
        self.approvals = approvals
        self.ledger = ledger
        self.audit_log = audit_log
        self.leases = leases
        self.saver = saver
        self._drive_key = global_key(prefix, "drive")
        self._failures_key = global_key(prefix, "drive", "failures")
        self._quarantine_key = global_key(prefix, "quarantine")

    # -- the drive mark ------------------------------------------------------------------

    def mark_drive(self, run_id: str, pipe: Pipeline | None = None) -> None:
        """Mark the run for driving (recover drives marked runs a dead process left)."""
        (pipe or self.client).zadd(self._drive_key, {run_id: to_ms(self.clock.now())})

    @contextmanager
    def starting(self, run_id: str, first: Callable[[], object] | None = None) -> Iterator[bool]:
        """Mark a new run for driving (as :meth:`mark_drive`), the mark riding ahead of the
        next round trip inside the block, which is True when the run's ``create`` audit event
        may ride too (``AuditLog.record(ride=True)``): :meth:`RunStore.create` then carries
        the mark, the event and the record in one round trip, in that order, as three round
        trips did (a server applies a prefix of it: a crash leaves no run, or a marked one).
        False (the mark sent now) when the audit log sends on a client of its own. ``first``
        is called before the mark, in the block (a new run's world seeding rides first)."""
        if not self.audit_log.shares_client:
            if first is not None:
                first()
            self.mark_drive(run_id)
            yield False
            return
        with riding():
            if first is not None:
                first()
            score = to_ms(self.clock.now())
            if not ride_ahead(self.client, ["ZADD", self._drive_key, score, run_id], raise_error):
                self.mark_drive(run_id)  # a client whose wire talks to no one server
            yield True

    def unmark(self, run_id: str) -> None:
        """Drop the run's drive mark."""
        self.client.zrem(self._drive_key, run_id)

    def marked_before(self, cutoff_ms: int) -> list[str]:
        """Runs marked for driving at or before ``cutoff_ms``."""
        return [text(i) for i in self.client.zrangebyscore(self._drive_key, "-inf", cutoff_ms)]

    def quarantined(self) -> list[str]:
        """Ids of the quarantined runs, oldest first."""
        return [text(i) for i in self.client.zrange(self._quarantine_key, 0, -1)]

    def count_unreadable_failure(self, run_id: str, quarantine_after: int) -> tuple[int, bool]:
        """Count a failure of a run whose record cannot be used; quarantine it (unmark, list,
        forget the count) on the ``quarantine_after``th. Returns (failures, quarantined)."""
        failures = int(self.client.hincrby(self._failures_key, run_id, 1))
        if failures < quarantine_after:
            return failures, False
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self._drive_key, run_id)
        pipe.zadd(self._quarantine_key, {run_id: to_ms(self.clock.now())})
        pipe.hdel(self._failures_key, run_id)
        pipe.execute()
        return failures, True

    # -- the lease and its reads ---------------------------------------------------------

    def take_lease(
        self, run_id: str, *, cold: bool, audit: AuditAppend | None = None
    ) -> LeaseReads:
        """Take the run's lease with its reads in one round trip (see
        :meth:`queue_take_lease`)."""
        return run_parsed(
            self.client, lambda pipe: self.queue_take_lease(pipe, run_id, cold=cold, audit=audit)
        )

    def queue_take_lease(
        self,
        pipe: Pipeline,
        run_id: str,
        *,
        cold: bool,
        audit: AuditAppend | None = None,
        guard: Guard | None = None,
        new_thread: bool = False,
    ) -> Callable[[Sequence[Any]], LeaseReads]:
        """Queue the acquire of the run's lease and the reads that ride with it; returns the
        parser of their replies (from the acquire's on).

        Read right after the acquire, the record is the one the last lease holder left. The
        same trip reads the audit chain's head (primed, so the drive's first audit append
        takes one trip), the run's newest checkpoint (so resuming the graph does not read it
        again) and, when ``cold``, the run's pinned pack and case. With ``audit``, it also
        appends that event (idempotent). With ``guard``, the lease is taken and the event
        appended only if the guard holds. ``new_thread``: the run's id was made just now, so
        it has no checkpoint (not read: ``latest`` says so). An unknown run gives its lease
        back.
        """
        start = len(pipe)
        parse_lease = self.leases.queue_acquire(
            pipe, run_id, self._owner(), self._lease_ttl_ms, guard=guard
        )
        self.runs.queue_get(pipe, run_id)
        self.audit_log.queue_head(pipe, run_id)
        at: dict[str, int] = {}
        if cold:
            at["pinned"] = len(pipe) - start
            self.runs.queue_pinned(pipe, run_id)
        if not new_thread and self.saver.queue_latest(pipe, run_id):
            at["latest"] = len(pipe) - start - 1
        audited: Callable[[Any], bool] | None = None
        if audit is not None:
            at["audit"] = len(pipe) - start
            audited = self.audit_log.queue_record(
                pipe, audit.run_id, once=audit.once, guard=guard, **audit.fields
            )

        def parse(replies: Sequence[Any]) -> LeaseReads:
            lease = parse_lease(replies[0])
            decision_audited = audited is not None and audited(replies[at["audit"]])
            record = self.runs.parse_record(replies[1])
            if record is None:
                if lease is not None:
                    self.leases.release(lease)
                return LeaseReads(None, None, decision_audited)
            if lease is None:
                return LeaseReads(None, record, decision_audited)
            self.audit_log.prime(run_id, replies[2])
            pinned = parse_pinned(replies[at["pinned"] : at["pinned"] + 2]) if cold else None
            latest = replies[at["latest"]] if "latest" in at else [] if new_thread else None
            return LeaseReads(lease, record, decision_audited, pinned, latest)

        return parse

    def take_lease_waiting(
        self, run_id: str, wait_s: float, *, cold: Callable[[], bool], audit: AuditAppend | None
    ) -> LeaseReads:
        """:meth:`take_lease`, tried for up to ``wait_s`` while another process holds it (one
        round trip per try); ``audit`` rides with the first try only."""
        deadline = time.monotonic() + wait_s
        audited = False
        while True:
            reads = self.take_lease(run_id, cold=cold(), audit=audit)
            audited = audited or reads.decision_audited
            audit = None
            if reads.lease is not None or reads.record is None or time.monotonic() >= deadline:
                return LeaseReads(reads.lease, reads.record, audited, reads.pinned, reads.latest)
            time.sleep(0.01)

    # -- deciding ------------------------------------------------------------------------

    def decide_and_take(
        self,
        run_id: str,
        step: DecideStep,
        *,
        cold: bool,
        audit: AuditAppend | None,
    ) -> tuple[DecideStepReply, LeaseReads | None]:
        """One round trip: mark the run for driving (first: a process that dies after the
        decision is stored leaves a marked run), the store's decide step, then, should the
        decision end the hold (``audit`` given), the run's lease with the drive's reads and
        the decision's audit event, guarded on the decide step having won."""
        guard = self.approvals.won_guard(step.approval_id, step.decide_id)

        def queue(
            pipe: Pipeline,
        ) -> Callable[[list[Any]], tuple[DecideStepReply, LeaseReads | None]]:
            self.mark_drive(run_id, pipe)
            parse_decide = self.approvals.queue_decide(
                pipe, step.approval_id, step.decision, now=step.now, status=step.status,
                escalate_deadline=step.escalate_deadline, decide_id=step.decide_id,
                approver=step.approver, edited=step.edited, changes=step.changes,
            )  # fmt: skip
            if audit is None:  # an escalation: the hold stays, nothing to drive
                return lambda replies: (parse_decide(replies[1]), None)
            parse_lease = self.queue_take_lease(pipe, run_id, cold=cold, audit=audit, guard=guard)
            return lambda replies: (parse_decide(replies[1]), parse_lease(replies[2:]))

        return run_parsed(self.client, queue)

    def approval_with_pinned(
        self, approval_id: str, run_id: str, *, cold: bool
    ) -> tuple[ApprovalView | None, Pinned | None]:
        """An approval, with its run's audit head primed (the decision's event is chained on
        it) and, when ``cold``, the run's pinned data, in one round trip."""

        def fill(pipe: Pipeline) -> None:
            self.approvals.queue_get(pipe, approval_id)
            self.audit_log.queue_head(pipe, run_id)
            if cold:
                self.runs.queue_pinned(pipe, run_id)

        replies = run_pipeline(self.client, fill)
        view = self.approvals.parse_view(replies[0:2])
        if view is None:
            return None, None
        self.audit_log.prime(run_id, replies[2])
        return view, (parse_pinned(replies[3:5]) if cold else None)

    # -- settling ------------------------------------------------------------------------

    def settle(self, run_id: str, s: Settlement) -> Settled:
        """Store where the run stopped, drop its superseded checkpoints and release its lease,
        in one round trip that also reads its effects and, as asked, its pending hold or
        whether an event is queued."""
        at: dict[str, int] = {}

        def fill(pipe: Pipeline) -> None:
            if s.wait is not None:
                self.runs.register_wait(run_id, s.wait[0], s.wait[1], pipe=pipe)
            at["record"] = len(pipe)  # fenced: a driver that lost its lease writes no record
            self.runs.update(s.record, pipe=pipe, guard=self.leases.held(s.lease), stored=s.stored)
            if s.unmark:
                pipe.zrem(self._drive_key, run_id)
            if s.unindex is not None:
                self.approvals.unindex(*s.unindex, pipe=pipe)
            # Resuming needs only the newest checkpoint: superseded ones, their writes and
            # blobs go (fenced like the record); most of a parked run's bytes were history.
            self.saver.queue_compact(pipe, run_id, s.lease.token)
            self.leases.release(s.lease, pipe=pipe)
            at["effects"] = len(pipe)
            self.ledger.queue_entries(pipe, run_id)
            at["read"] = len(pipe)
            if s.read_pending is not None:
                self.approvals.queue_get(pipe, s.read_pending)
            elif s.read_has_event:
                self.runs.queue_has_event(pipe, run_id)
            # the audit stream is compacted after the append (it is compacted too), by the
            # append's own script call when there is one
            if s.audit is not None:
                at["audit"] = len(pipe)
                audited.append(
                    self.audit_log.queue_record(
                        pipe, s.audit.run_id, once=s.audit.once, guard=self.leases.held(s.lease),
                        compact=True, **s.audit.fields,
                    )
                )  # fmt: skip
            else:
                self.audit_log.queue_compact(pipe, run_id)
            if s.record.status in FINAL_STATUSES:  # last: the audit append above is kept too
                self._queue_retention(pipe, run_id)

        audited: list[Callable[[Any], bool]] = []
        replies = run_pipeline(self.client, fill)
        if not int(replies[at["record"]]):
            return Settled(False)
        effects = self.ledger.parse_entries(replies[at["effects"]])
        ok = not audited or audited[0](replies[at["audit"]])
        if s.read_pending is not None:
            view = self.approvals.parse_view(replies[at["read"] : at["read"] + 2])
            return Settled(True, effects, pending=view, audited=ok)
        if s.read_has_event:
            return Settled(True, effects, has_event=replies[at["read"]] is not None, audited=ok)
        return Settled(True, effects, audited=ok)

    def store_failure(
        self, run_id: str, record: RunRecord, lease: Lease, *, quarantine: bool
    ) -> bool:
        """Store a failed drive's record under the lease and release it: the run stays marked
        (retried later) or, with ``quarantine``, moves to the quarantine. False: the lease was
        lost (another process took the run over)."""

        def fill(pipe: Pipeline) -> None:
            self.runs.update(record, pipe=pipe, guard=self.leases.held(lease))
            if quarantine:
                pipe.zrem(self._drive_key, run_id)
                pipe.zadd(self._quarantine_key, {run_id: to_ms(self.clock.now())})
            else:
                self.mark_drive(run_id, pipe)  # retried by a later recover
            self.leases.release(lease, pipe=pipe)
            if quarantine:
                self._queue_retention(pipe, run_id)

        return bool(int(run_pipeline(self.client, fill)[0]))

    def release_quarantine(self, run_id: str, record: RunRecord, lease: Lease) -> bool:
        """Store a quarantined run's record (an operator retries it) under the lease, take
        it off the quarantine, mark it for driving and release the lease. False: the lease
        was lost."""

        def fill(pipe: Pipeline) -> None:
            self.runs.update(record, pipe=pipe, guard=self.leases.held(lease))
            pipe.zrem(self._quarantine_key, run_id)
            pipe.hdel(self._failures_key, run_id)
            self.mark_drive(run_id, pipe)
            self.leases.release(lease, pipe=pipe)
            self._queue_retention(pipe, run_id)  # running again: its keys lose their TTL

        return bool(int(run_pipeline(self.client, fill)[0]))

    def queue_cancelled(self, pipe: Pipeline, record: RunRecord) -> None:
        """Queue storing a cancelled run's record (its caller holds the lease) with its keys'
        TTL on ``pipe`` (safe to send twice): the cancel's audit event sends them ahead of
        itself, in its own round trip."""
        self.runs.update(record, pipe=pipe)
        self._queue_retention(pipe, record.run_id)

    def _queue_retention(self, pipe: Pipeline, run_id: str) -> None:
        """Queue the retention script: TTLs for an ended run's keys, none for a run that is
        not ended (see :mod:`carebound.state.retention`)."""
        queue_retention(pipe, self._prefix, run_id, self.retention_s)
