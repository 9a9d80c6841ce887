"""The Runner: start runs, list and decide holds, deliver events, sweep timers, audit.

Everything that moves a run follows one pattern: mark the run for driving, record the fact in
Redis (a decision, an event, a fired timer), then *drive* the run: take its lease, resume the
graph as far as it goes (the next hold, wait or end), and settle its record. The mark comes
first so that a process dying between the fact and the drive leaves a marked run. A marked run
that a crashed process left is driven again by :meth:`Runner.recover` or the worker's sweep;
nothing is lost because every step was checkpointed and every effect went through the ledger.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import redis
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._agent import AgentDefinition, CallResult, RunEvent
from carebound._errors import (
    AlreadyDecidedError,
    DecisionRefusedError,
    LeaseLostError,
    NotFoundError,
    RunStateError,
    StoreUnavailableError,
)
from carebound._graph import RunState, Services, build_graph
from carebound._inline_writes import inline_writes
from carebound._inline_writes import install as install_inline_writes
from carebound._input_checks import check_event_input, check_start_input
from carebound._keys import DEFAULT_PREFIX, global_key, text
from carebound._ledger import EffectLedger, LedgerEntry
from carebound._pipeline import Guard, run_parsed
from carebound._pipeline import run as run_pipeline
from carebound._principal import Provenance, normalize_reviewer_id
from carebound._runs import FINAL_STATUSES, RunRecord, RunStatus, RunStore
from carebound.approvals import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalStore,
    ApprovalView,
    Decision,
    DecisionRecord,
    Edit,
    Escalate,
    Reject,
    run_id_of,
)
from carebound.approvals import DecideResult as StoreDecideResult
from carebound.approvals._decision_audit import decision_detail
from carebound.approvals._edits import ArgChange, args_diff, invalid_edit_error
from carebound.audit import (
    Actor,
    AuditCheckpoint,
    AuditEvent,
    AuditLog,
    AuditTrail,
    VerifyResult,
)
from carebound.checkpoint import RedisSaver
from carebound.clock import Clock, SystemClock, from_ms, to_ms
from carebound.guardrails import (
    PolicyPack,
    approver_identity,
    authorize_decision,
    check_escalation,
    check_permission,
    evaluate_rules,
    load_policy_pack,
)
from carebound.lease import Lease, RunLease, start_heartbeats
from carebound.tools import ToolContext

_log = logging.getLogger("carebound.runner")

QUARANTINE_AFTER = 3
"""Drives of one run that fail in a row before it is quarantined (no longer retried)."""


class RunView(BaseModel):
    """A run as callers see it: its record, findings, call results, effects, pending hold."""

    model_config = ConfigDict(frozen=True)

    record: RunRecord
    findings: dict[str, Any] = Field(default_factory=dict)
    results: list[CallResult] = Field(default_factory=list)
    effects: list[LedgerEntry] = Field(default_factory=list)
    pending: ApprovalView | None = None
    steps: int = 0

    @property
    def run_id(self) -> str:
        """The run id."""
        return self.record.run_id

    @property
    def status(self) -> RunStatus:
        """The run's status."""
        return self.record.status


class DecideResult(BaseModel):
    """What a decision did."""

    model_config = ConfigDict(frozen=True)

    outcome: str
    """``decided`` (the run moved on), ``awaiting_second_approver`` or ``escalated``."""
    run: RunView
    changes: list[ArgChange] = []
    """What the decision changed in the call's arguments, before -> after (an edit, or the
    approval of a two-person hold a first reviewer edited)."""


class SweepReport(BaseModel):
    """What one sweep did."""

    timers_fired: int = 0
    holds_expired: int = 0
    holds_escalated: int = 0
    runs_recovered: int = 0
    runs_failed: int = 0
    """Runs the sweep could not move on (an unexpected error; retried later, or quarantined)."""
    runs_quarantined: int = 0
    """Of those, runs that failed too often in a row and are no longer retried."""


class RecoverReport(BaseModel):
    """What one :meth:`Runner.recover_runs` did, run by run."""

    recovered: list[str] = Field(default_factory=list)
    """Runs driven to their next stop."""
    failed: list[str] = Field(default_factory=list)
    """Runs whose drive failed with an unexpected error (logged by class, no PHI); each is
    retried by a later recover until it fails ``QUARANTINE_AFTER`` times in a row."""
    quarantined: list[str] = Field(default_factory=list)
    """Of the failed, those quarantined now."""


_P = ParamSpec("_P")
_T = TypeVar("_T")

install_inline_writes()
start_heartbeats()  # one idle thread now, so a tool call on a decide's path starts none

_DECIDED_STATUS: dict[str, ApprovalStatus] = {
    "approve": "approved",
    "edit": "edited",
    "reject": "rejected",
}
"""The status a decision of each kind gives its approval (an escalation leaves it pending)."""
_WORKER = Provenance(channel="worker", principal="system", kind="system", authenticated=True)
"""The provenance of what carebound's own deadline sweep decides (escalate or expire)."""


def _store_errors(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Raise :class:`StoreUnavailableError` instead of redis-py's connection errors."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(
                f"the run store stopped answering during {method.__name__}(): {exc}",
                hint="start Redis or check CAREBOUND_REDIS_URL; runs resume where they "
                "stopped once the store is back (a worker's recover() drives them)",
            ) from exc
        except redis.ResponseError as exc:
            from carebound.store._refusals import write_refusal

            refused = write_refusal(exc)
            if refused is None:
                raise
            raise refused from exc

    return wrapper


class _Lru(OrderedDict[str, Any]):
    """A small bounded cache: a long-lived worker sees many runs."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def put(self, key: str, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._size:
            self.popitem(last=False)
        return value


@dataclass(frozen=True)
class _Stop:
    """Where a run's graph stopped: its state values and the interrupt it is parked on."""

    values: dict[str, Any]
    interrupt: dict[str, Any] | None
    """The value of the first interrupt (a hold or a wait), or None."""
    tasks_left: bool
    """Whether the latest checkpoint still has tasks to run (a crash mid-step)."""

    @classmethod
    def of_snapshot(cls, snapshot: Any) -> _Stop:
        """From ``graph.get_state``."""
        interrupts = snapshot.interrupts
        return cls(
            values=dict(snapshot.values or {}),
            interrupt=interrupts[0].value if interrupts else None,
            tasks_left=bool(snapshot.next or snapshot.tasks),
        )

    @classmethod
    def of_output(cls, output: Mapping[str, Any]) -> _Stop:
        """From what ``graph.invoke`` returned: the state, with ``__interrupt__`` when it
        parked (a graph that returns normally has either parked or ended)."""
        values = {k: v for k, v in output.items() if k != "__interrupt__"}
        interrupts = output.get("__interrupt__") or ()
        return cls(
            values=values,
            interrupt=interrupts[0].value if interrupts else None,
            tasks_left=bool(interrupts),
        )


@dataclass(frozen=True)
class _Step:
    """One ``graph.invoke``: its input, and the queued event it consumes."""

    command: Any
    consumed: RunEvent | None = None


@dataclass(frozen=True)
class _Acquired:
    """What taking a run's lease read in the same round trip."""

    lease: Lease | None
    """None: another process holds it."""
    record: RunRecord
    decision_audited: bool
    """The decision passed in is in the audit chain (False: append it again)."""
    latest: Any = None
    """The run's newest checkpoint as read for ``RedisSaver.primed`` (None: not read)."""


_DecideTrip = tuple[StoreDecideResult, _Acquired | None]
"""The decide step's answer, and what the lease reads in its round trip took (final kinds)."""


@dataclass(frozen=True)
class _Settled:
    """What settling a run stored and read back."""

    record: RunRecord
    effects: list[LedgerEntry]
    pending: ApprovalView | None
    moved_meanwhile: bool = False
    """Its hold was decided, or an event arrived, while this drive parked it: drive again."""


def new_run_id() -> str:
    """A short, unique, URL- and shell-safe run id."""
    return "r" + uuid.uuid4().hex[:12]


class Runner:
    """Runs bounded agents on a Redis-compatible store. Thread-safe for concurrent decides."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        policy: str | Path | PolicyPack = "default",
        clock: Clock | None = None,
        model: Any = None,
        agents: Mapping[str, AgentDefinition] | None = None,
        world_factory: Any = None,
        lease_ttl_ms: int = 30_000,
    ) -> None:
        if client is None:
            from carebound.store import connect

            client = connect().client()
        self.client = client
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.default_policy = policy
        self._agents = dict(agents) if agents is not None else _default_agents()
        self._world_factory = world_factory if world_factory is not None else _default_world()
        self._simulated_world = world_factory is None
        self._lease_ttl_ms = lease_ttl_ms
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.approvals = ApprovalStore(client, prefix=prefix)
        self.ledger = EffectLedger(client, prefix=prefix)
        self.audit_log = AuditLog(client, prefix=prefix)
        self.runs = RunStore(client, prefix=prefix)
        self._leases = RunLease(client, prefix=prefix)
        self._saver = RedisSaver(client, prefix=prefix)
        self._packs = _Lru(1024)
        self._packs_by_digest = _Lru(64)
        self._cases = _Lru(1024)
        self._worlds = _Lru(1024)
        self._decided: dict[str, ApprovalView] = {}
        self._seeded_worlds = _Lru(1024)
        self._services = Services(
            client=client,
            prefix=prefix,
            clock=self.clock,
            approvals=self.approvals,
            ledger=self.ledger,
            audit=self.audit_log,
            pack_for=self.pack_for,
            case_for=self._case_for,
            world_for=self._world_for,
            model=model,
            decided=self._decided,
            heartbeat=self._heartbeat,
        )
        self._graphs: dict[str, Any] = {}
        self._drive_key = global_key(prefix, "drive")
        self._failures_key = global_key(prefix, "drive", "failures")
        self._quarantine_key = global_key(prefix, "quarantine")

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Give back what this Runner borrowed from its client's pool. The client itself is the
        caller's and stays open; a Runner holds no connection between its calls anyway."""
        self._saver.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _heartbeat(self, run_id: str, token: int) -> Any:
        """Keep this process's lease of ``run_id`` (``token``) alive during a tool call."""
        lease = Lease(run_id, self._owner, token, 0, self._lease_ttl_ms)
        return self._leases.heartbeat(lease)

    # -- lookups -------------------------------------------------------------------------

    def agent(self, name: str) -> AgentDefinition:
        """The agent definition called ``name``."""
        try:
            return self._agents[name]
        except KeyError:
            raise NotFoundError(
                f"unknown agent {name!r}",
                hint=f"known agents: {', '.join(sorted(self._agents)) or '(none)'}",
            ) from None

    @property
    def agent_names(self) -> list[str]:
        """Names of the agents this runner can start."""
        return sorted(self._agents)

    def pack_for(self, run_id: str) -> PolicyPack:
        """The policy pack a run was started with (pinned at start)."""
        pack: PolicyPack | None = self._packs.get(run_id)
        if pack is None:
            raw = self.runs.policy_json(run_id)
            if raw is None:
                raise _no_run(run_id)
            pack = self._remember_pack(run_id, raw)
        return pack

    def _remember_pack(self, run_id: str, raw: bytes | str) -> PolicyPack:
        data = raw.encode() if isinstance(raw, str) else raw
        digest = hashlib.sha256(data).hexdigest()
        pack: PolicyPack | None = self._packs_by_digest.get(digest)
        if pack is None:  # most runs share a pack: parse each distinct one once
            pack = self._packs_by_digest.put(digest, PolicyPack.model_validate_json(data))
        return self._packs.put(run_id, pack)  # type: ignore[no-any-return]

    def _remember_pinned(
        self, run_id: str, policy: bytes | None, case: bytes | None, world: bytes | None
    ) -> None:
        """Cache what ``RunStore.queue_pinned`` read (nothing for an unknown run)."""
        if world is not None:
            self._seeded_worlds.put(run_id, True)
        if policy is not None and run_id not in self._packs:
            self._remember_pack(run_id, policy)
        if case is not None and run_id not in self._cases:
            self._cases.put(run_id, dict(json.loads(case)))

    def _case_for(self, run_id: str) -> dict[str, Any]:
        case: dict[str, Any] | None = self._cases.get(run_id)
        if case is None:
            case = self._cases.put(run_id, self.runs.case(run_id))
        return case

    def _world_for(self, run_id: str) -> Any:
        if not self._world_factory:
            return None
        world = self._worlds.get(run_id)
        if world is None:
            if self._simulated_world and run_id in self._seeded_worlds:
                # Seeded at start (the run's hash says so): reopen it without checking again.
                from carebound.tools.connectors import World

                world = World.reopen(self.client, run_id, prefix=self.prefix)
            else:
                world = self._world_factory(self.client, run_id, self.prefix)
            self._worlds.put(run_id, world)
        return world

    def _graph(self, agent: str) -> Any:
        graph = self._graphs.get(agent)
        if graph is None:
            graph = build_graph(self.agent(agent), self._services, self._saver)
            self._graphs[agent] = graph
        return graph

    def _resolve_pack(self, policy: str | Path | PolicyPack | None) -> PolicyPack:
        policy = self.default_policy if policy is None else policy
        return policy if isinstance(policy, PolicyPack) else load_policy_pack(policy)

    # -- starting ------------------------------------------------------------------------

    @_store_errors
    def start(
        self,
        agent: str,
        case: Mapping[str, Any],
        *,
        requester: str,
        policy: str | Path | PolicyPack | None = None,
        world: Any = None,
        run_id: str | None = None,
    ) -> RunView:
        """Start ``agent`` on ``case`` (a FHIR Bundle as JSON) and drive it to its first stop.

        ``world`` seeds the simulated connectors (a ``WorldSpec``) for scenario runs.
        """
        definition = self.agent(agent)
        pack = self._resolve_pack(policy)
        # Everything is checked before the first write: a refused start leaves no key.
        policy_json = check_start_input(
            case, requester=requester, pack=pack, world=world, run_id=run_id
        )
        # Stored in its normal form: separation of duties compares it with reviewer ids.
        requester = normalize_reviewer_id(requester, what="requester")
        self.audit_log.load_keys()  # a bad audit key is refused before the first write too
        run_id = run_id or new_run_id()
        now = self.clock.now()
        record = RunRecord(
            run_id=run_id,
            agent=definition.name,
            requester=requester,
            status="running",
            policy=f"{pack.name}@{pack.version}",
            created_at=now,
            updated_at=now,
        )
        # Crash-safe order: the world, the drive mark, then the record (with its case and pack,
        # in one write). A start that dies half-way leaves no run (start it again) or a marked
        # one (recover drives it).
        if world is not None:
            self._seed_world(run_id, world)
        self._mark_drive(run_id)
        self.audit_log.record(
            run_id,
            once="create",
            time=now,
            actor=Actor(kind="person", id=requester, role=None),
            action="create",
            category=definition.category,
            outcome="success",
            patient_ref=None,
            detail={"agent": definition.name, "policy": record.policy},
        )
        self.runs.create(
            record,
            case=dict(case),
            policy_json=policy_json,
            world_seeded=world is not None,
        )
        if world is not None:
            self._seeded_worlds.put(run_id, True)
        return self.drive(run_id)

    def _seed_world(self, run_id: str, world: Any) -> None:
        from carebound.tools.connectors import World

        World.seed(self.client, run_id, world, prefix=self.prefix)

    # -- driving -------------------------------------------------------------------------

    def _mark_drive(self, run_id: str, pipe: redis.client.Pipeline | None = None) -> None:
        (pipe or self.client).zadd(self._drive_key, {run_id: to_ms(self.clock.now())})

    def _acquire_with_record(
        self,
        run_id: str,
        wait_s: float,
        *,
        decided: ApprovalView | None = None,
        audited: bool = False,
    ) -> _Acquired:
        """Take the run's lease and read what goes with it in one round trip per try, for up
        to ``wait_s`` while another process holds it (see :meth:`_queue_lease_reads`; raises
        :class:`NotFoundError` for an unknown run). With ``decided`` (not ``audited`` yet), the
        first try also appends that decision's audit event (idempotent)."""
        deadline = time.monotonic() + wait_s
        decision_audited = audited
        first_try = not audited
        while True:
            acquired = self._lease_round_trip(run_id, decided if first_try else None)
            decision_audited = decision_audited or acquired.decision_audited
            first_try = False
            if acquired.lease is not None or time.monotonic() >= deadline:
                return dataclasses.replace(acquired, decision_audited=decision_audited)
            time.sleep(0.01)

    def _lease_round_trip(self, run_id: str, decided: ApprovalView | None) -> _Acquired:
        return run_parsed(self.client, lambda pipe: self._queue_lease_reads(pipe, run_id, decided))

    def _queue_lease_reads(
        self,
        pipe: redis.client.Pipeline,
        run_id: str,
        decided: ApprovalView | None = None,
        *,
        guard: Guard | None = None,
    ) -> Callable[[Sequence[Any]], _Acquired]:
        """Queue the acquire of the run's lease and the reads that ride with it; returns the
        parser of their replies (from the acquire's on), which raises
        :class:`NotFoundError` for an unknown run (releasing a lease it got).

        Read right after the acquire, the record is the one the last lease holder left. The
        same trip reads the audit chain's head (so the drive's first audit append takes one
        trip), the run's newest checkpoint (so resuming the graph does not read it again)
        and, when this process has not cached them, the run's pinned pack and case. With
        ``decided``, it also appends that decision's audit event (idempotent). With ``guard``,
        the lease is taken and the event appended only if the guard holds.
        """
        cold = run_id not in self._packs or run_id not in self._cases
        start = len(pipe)
        parse_lease = self._leases.queue_acquire(
            pipe, run_id, self._owner, self._lease_ttl_ms, guard=guard
        )
        self.runs.queue_get(pipe, run_id)
        self.audit_log.queue_head(pipe, run_id)
        at: dict[str, int] = {}
        if cold:
            at["pinned"] = len(pipe) - start
            self.runs.queue_pinned(pipe, run_id)
        if self._saver.queue_latest(pipe, run_id):
            at["latest"] = len(pipe) - start - 1
        audited: Callable[[Any], bool] | None = None
        if decided is not None:
            at["audit"] = len(pipe) - start
            audited = self._queue_decision_audit(pipe, decided, guard=guard)

        def parse(replies: Sequence[Any]) -> _Acquired:
            lease = parse_lease(replies[0])
            decision_audited = audited is not None and audited(replies[at["audit"]])
            record = self.runs.parse_record(replies[1])
            if record is None:
                if lease is not None:
                    self._leases.release(lease)
                raise _no_run(run_id)
            if lease is None:
                return _Acquired(None, record, decision_audited)
            self.audit_log.prime(run_id, replies[2])
            if cold:
                self._remember_pinned(run_id, *replies[at["pinned"]])
            latest = replies[at["latest"]] if "latest" in at else None
            return _Acquired(lease, record, decision_audited, latest)

        return parse

    @_store_errors
    def drive(self, run_id: str, *, lease_wait_s: float = 5.0) -> RunView:
        """Move a run as far as it can go now; safe to call at any time, from any process."""
        return self._drive(run_id, lease_wait_s=lease_wait_s)

    def _drive(
        self,
        run_id: str,
        *,
        lease_wait_s: float,
        decided: ApprovalView | None = None,
        acquired: _Acquired | None = None,
    ) -> RunView:
        """``drive``; ``decided`` is the approval this process just decided (final: it is not
        read back, and its inbox entry is dropped in the write that settles the run), and
        ``acquired`` what the decide step's round trip took and read already."""
        if acquired is None or (acquired.lease is None and lease_wait_s > 0):
            audited = acquired is not None and acquired.decision_audited
            acquired = self._acquire_with_record(
                run_id, lease_wait_s, decided=decided, audited=audited
            )
        lease, record = acquired.lease, acquired.record
        if lease is None or record.status in FINAL_STATUSES:
            # Another process drives it (it stays marked for recovery), or it has ended.
            if decided is not None:
                self.approvals.unindex(decided.request.approval_id, decided.required_role)
            if lease is not None:
                self.client.zrem(self._drive_key, run_id)
                self._leases.release(lease)
            return self.get(run_id)
        released = False
        try:
            try:
                with (
                    self._saver.primed(run_id, acquired.latest),
                    self._saver.coalesced_writes(run_id),
                ):
                    stop = self._drive_locked(
                        run_id, record, lease, decided, decision_audited=acquired.decision_audited
                    )
            except Exception as exc:
                if not _is_drive_failure(exc):
                    raise
                released = True
                return self._drive_failed(run_id, record, lease, exc)
            settled = self._settle(run_id, record, stop, lease=lease, decided=decided)
            released = True
        except LeaseLostError:
            if decided is None:
                raise
            # The decision is stored and the run moves on in the process that took it over:
            # the reviewer is told where the run is, not that the decision was refused.
            self._leases.release(lease)
            return self.get(run_id)
        finally:
            if not released:
                self._leases.release(lease)
        if settled.moved_meanwhile:
            return self._drive(run_id, lease_wait_s=0)
        if settled.record.status in FINAL_STATUSES:
            self.runs.forget_waits(run_id)
        return self._view(settled.record, stop.values, settled.effects, settled.pending)

    def _drive_failed(
        self, run_id: str, record: RunRecord, lease: Lease, exc: Exception
    ) -> RunView:
        """Record a drive that failed with an unexpected error and release the run: it stays
        marked (the next recover retries it) until it has failed ``QUARANTINE_AFTER`` times in
        a row, then it is quarantined. Only the error's class is kept (its message may hold
        PHI)."""
        name = type(exc).__name__
        failures = record.failures + 1
        quarantined = failures >= QUARANTINE_AFTER
        _log.warning("run %s: drive failed with %s (%d in a row)", run_id, name, failures)
        if quarantined:
            status: RunStatus = "quarantined"
            summary = (
                f"quarantined after {failures} failed drives in a row (last: {name}); not "
                "retried until an operator looks at it (carebound status / audit)"
            )
        else:
            status = "running"
            summary = (
                f"drive failed ({name}, {failures} of {QUARANTINE_AFTER} in a row); "
                "the worker retries it"
            )
        updated = record.model_copy(
            update={
                "status": status,
                "summary": summary,
                "failures": failures,
                "updated_at": self.clock.now(),
            }
        )

        def fill(pipe: redis.client.Pipeline) -> None:
            self.runs.update(updated, pipe=pipe, guard=self._leases.held(lease))
            if quarantined:
                pipe.zrem(self._drive_key, run_id)
                pipe.zadd(self._quarantine_key, {run_id: to_ms(self.clock.now())})
            else:
                self._mark_drive(run_id, pipe)  # retried by a later recover
            self._leases.release(lease, pipe=pipe)

        if not int(run_pipeline(self.client, fill)[0]):
            return self.get(run_id)  # another process took the run over meanwhile
        try:
            category = self.agent(record.agent).category
        except NotFoundError:
            category = "run"
        self.audit_log.record(
            run_id,
            time=self.clock.now(),
            actor=Actor(kind="system", id="runner", role=None),
            action="event",
            category=category,
            outcome="failed",
            detail={
                "kind": "quarantined" if quarantined else "drive_failed",
                "error_class": name,
                "failures": failures,
            },
        )
        return self.get(run_id)

    def _drive_locked(
        self,
        run_id: str,
        record: RunRecord,
        lease: Lease,
        decided: ApprovalView | None,
        *,
        decision_audited: bool = False,
    ) -> _Stop:
        graph = self._graph(record.agent)
        config: dict[str, Any] = {
            "configurable": {"thread_id": run_id, "fencing_token": lease.token},
            "recursion_limit": 10_000,
            # Each step has one task, run inline, and checkpoint writes run inline too
            # (carebound._inline_writes); were that off, one pool thread instead of several.
            "max_concurrency": 1,
        }
        renewed = time.monotonic()
        stop: _Stop | None = None
        if not (
            decided is not None
            and record.status == "paused"
            and record.pending_approval == decided.request.approval_id
        ):
            stop = _Stop.of_snapshot(graph.get_state(config))
        # else: the record, written under the lease after the hold was checkpointed, says the
        # run is parked on the hold just decided here, so it is resumed without reading the
        # state first. Were the record behind the checkpoint (a driver died before settling),
        # the resume is still harmless: the hold node reads the decision, the wait node
        # ignores a payload that is not an event, and a step left mid-way just continues.
        parked_here = False
        if decided is not None:
            self._decided[decided.request.approval_id] = decided
        try:
            for _ in range(1000):
                step: _Step | None
                if stop is None:
                    assert decided is not None
                    if not decision_audited:
                        self._ensure_decision_audited(decided)
                    step = _Step(Command(resume={"approval_id": decided.request.approval_id}))
                else:
                    step = self._next_step(run_id, record, stop, parked_here=parked_here)
                if step is None:
                    break
                command, consumed = step.command, step.consumed
                with inline_writes():
                    stop = _Stop.of_output(graph.invoke(command, config, durability="sync"))
                parked_here = True
                if consumed is not None:
                    self.runs.consume_event(run_id, consumed.id)
                if time.monotonic() - renewed > self._lease_ttl_ms / 3000:
                    self._leases.renew(lease)
                    renewed = time.monotonic()
            else:
                stop = _Stop.of_snapshot(graph.get_state(config))  # the step limit was reached
        finally:
            if decided is not None:
                self._decided.pop(decided.request.approval_id, None)
        assert stop is not None
        return stop

    def _initial_state(self, record: RunRecord) -> RunState:
        return RunState(
            run_id=record.run_id,
            requester=record.requester,
            started_at=record.created_at.isoformat(),
            queue=[],
            current=None,
            results=[],
            events=[],
            findings={},
            memory={},
            steps=0,
            tool_calls=0,
            turn=0,
            status="running",
            summary="",
            wait=None,
        )

    def _next_step(
        self, run_id: str, record: RunRecord, stop: _Stop, *, parked_here: bool
    ) -> _Step | None:
        """What moves the run on from ``stop`` now, or None when nothing does."""
        if not stop.values:
            return _Step(self._initial_state(record))
        if stop.interrupt is not None:
            if parked_here:
                return None  # _settle checks, in its round trip, whether it moved meanwhile
            value = stop.interrupt
            if value.get("type") == "hold":
                approval_id = value["approval_id"]
                view = self._decided.get(approval_id) or self.approvals.get(approval_id)
                if view is None or view.status == "pending":
                    return None
                self._ensure_decision_audited(view)
                return _Step(Command(resume={"approval_id": approval_id}))
            event = self.runs.peek_event(run_id)
            if event is None:
                return None
            return _Step(Command(resume=event.model_dump(mode="json")), consumed=event)
        if stop.tasks_left:
            return _Step(None)  # interrupted by a crash mid-step: continue from the checkpoint
        return None

    def _settle(
        self,
        run_id: str,
        record: RunRecord,
        stop: _Stop,
        *,
        lease: Lease,
        decided: ApprovalView | None,
    ) -> _Settled:
        """Store where the run stopped and release its lease, in one round trip that also
        reads what the caller's view needs and whether the run moved meanwhile (its hold was
        decided, or an event arrived, before the stop was registered)."""
        values = stop.values
        status: RunStatus
        pending = None
        wait_reason = None
        wait_until = None
        wait_match: list[str] = []
        if stop.interrupt is not None:
            value = stop.interrupt
            if value.get("type") == "hold":
                status, pending = "paused", value["approval_id"]
            else:
                status = "waiting"
                wait_reason = value.get("reason")
                until = value.get("until")
                wait_until = datetime.fromisoformat(until) if until else None
                wait_match = list(value.get("match", []))
        elif stop.tasks_left:
            status = "running"
        else:
            status = values.get("status") or "completed"
            if status == "running":
                status = "completed"
        updated = record.model_copy(
            update={
                "status": status,
                "pending_approval": pending,
                "wait_reason": wait_reason,
                "wait_until": wait_until,
                "summary": values.get("summary", ""),
                "updated_at": self.clock.now(),
                "failures": 0,
            }
        )

        at: dict[str, int] = {}

        def fill(pipe: redis.client.Pipeline) -> None:
            if status == "waiting":
                self.runs.register_wait(run_id, wait_match, wait_until, pipe=pipe)
            at["record"] = len(pipe)  # fenced: a driver that lost its lease writes no record
            self.runs.update(updated, pipe=pipe, guard=self._leases.held(lease))
            if status != "running":
                pipe.zrem(self._drive_key, run_id)
            if decided is not None and decided.request.approval_id != pending:
                self.approvals.unindex(
                    decided.request.approval_id, decided.required_role, pipe=pipe
                )
            self._leases.release(lease, pipe=pipe)
            self.ledger.queue_entries(pipe, run_id)
            if pending is not None:
                self.approvals.queue_get(pipe, pending)
            elif status == "waiting":
                self.runs.queue_has_event(pipe, run_id)

        replies = run_pipeline(self.client, fill)
        if not int(replies[at["record"]]):
            raise LeaseLostError(
                f"run {run_id} was not settled: this process lost its lease while driving it",
                hint="another worker owns the run now and settles it; nothing to do here",
            )
        if pending is not None:
            view = self.approvals.parse_view(replies[-1])
            effects = self.ledger.parse_entries(replies[-2])
            moved = view is not None and view.status != "pending"
            return _Settled(updated, effects, view, moved_meanwhile=moved)
        if status == "waiting":
            effects = self.ledger.parse_entries(replies[-2])
            return _Settled(updated, effects, None, moved_meanwhile=replies[-1] is not None)
        return _Settled(updated, self.ledger.parse_entries(replies[-1]), None)

    # -- reading -------------------------------------------------------------------------

    def _record(self, run_id: str) -> RunRecord:
        record = self.runs.get(run_id)
        if record is None:
            raise _no_run(run_id)
        return record

    @_store_errors
    def get(self, run_id: str) -> RunView:
        """A run by id, from any process."""
        record = self._record(run_id)
        graph = self._graph(record.agent)
        snapshot = graph.get_state({"configurable": {"thread_id": run_id}})
        pending = self.approvals.get(record.pending_approval) if record.pending_approval else None
        return self._view(record, snapshot.values or {}, self.ledger.entries(run_id), pending)

    @staticmethod
    def _view(
        record: RunRecord,
        values: Mapping[str, Any],
        effects: list[LedgerEntry],
        pending: ApprovalView | None,
    ) -> RunView:
        return RunView(
            record=record,
            findings=values.get("findings", {}),
            results=[CallResult.model_validate(r) for r in values.get("results", [])],
            effects=effects,
            pending=pending,
            steps=values.get("steps", 0),
        )

    @_store_errors
    def list_runs(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered."""
        out: list[RunRecord] = []
        offset = 0
        while len(out) < limit:
            page = self.runs.page(limit=200, offset=offset)
            if not page:
                break
            offset += len(page)
            out.extend(
                r
                for r in page
                if (status is None or r.status == status) and (agent is None or r.agent == agent)
            )
        return out[:limit]

    @_store_errors
    def pending(
        self,
        *,
        role: str | None = None,
        agent: str | None = None,
        overdue: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> list[ApprovalView]:
        """Paused steps across all runs, most urgent first. Never scans runs."""
        return self.approvals.pending(
            role=role,
            agent=agent,
            overdue_at=self.clock.now() if overdue else None,
            limit=limit,
            offset=offset,
        )

    @_store_errors
    def approval(self, approval_id: str) -> ApprovalView:
        """One approval by id."""
        view = self.approvals.get(approval_id)
        if view is None:
            raise _no_approval(approval_id)
        return view

    def _approval_and_pinned(self, approval_id: str) -> ApprovalView:
        """``approval``, with the run's pinned pack and case read in the same round trip
        when this process has not cached them yet."""
        try:
            run_id = run_id_of(approval_id)
        except ValueError:
            return self.approval(approval_id)  # raises NotFoundError
        cold = run_id not in self._packs or run_id not in self._cases

        def fill(pipe: redis.client.Pipeline) -> None:
            self.approvals.queue_get(pipe, approval_id)
            self.audit_log.queue_head(pipe, run_id)  # the decision's event is chained on it
            if cold:
                self.runs.queue_pinned(pipe, run_id)

        replies = run_pipeline(self.client, fill)
        view = self.approvals.parse_view(replies[0])
        if view is None:
            raise _no_approval(approval_id)
        self.audit_log.prime(run_id, replies[1])
        if cold:
            self._remember_pinned(run_id, *replies[2])
        return view

    @_store_errors
    def reveal(
        self,
        approval_id: str,
        *,
        viewer: str,
        role: str | None = None,
        via: Provenance | None = None,
    ) -> ApprovalView:
        """The approval with its PHI, recording the view (``view_phi``) in the audit trail.

        Only someone who may decide the hold may see its PHI: a directory reviewer holding the
        hold's required role (``role``, if given, must be it), or a service principal
        (``via.kind == "service"``) whose token roles the calling channel has checked.

        Raises:
            DecisionRefusedError: the viewer is not in the directory or lacks the role.
        """
        view = self.approval(approval_id)
        request = view.request
        who, held = self._phi_viewer(
            request.run_id, viewer, {view.required_role}, role=role, via=via
        )
        self._record_phi_view(
            request.run_id,
            agent=request.agent,
            viewer=who,
            role=held,
            via=via,
            patient_ref=request.patient_ref,
            detail={"approval_id": approval_id},
        )
        return view

    @_store_errors
    def reveal_run(
        self,
        run_id: str,
        *,
        viewer: str,
        roles: Iterable[str],
        role: str | None = None,
        via: Provenance | None = None,
        what: str = "run",
    ) -> None:
        """Record (``view_phi``) that ``viewer`` is shown the PHI of a run's ``what`` (its
        findings, calls or audit trail), after checking as :meth:`reveal` does that they hold
        one of ``roles`` (the roles of the run's holds, as the channel knows them).

        Raises:
            DecisionRefusedError: the viewer is not in the directory or holds none of ``roles``.
        """
        record = self.runs.get(run_id)
        if record is None:
            raise _no_run(run_id)
        who, held = self._phi_viewer(run_id, viewer, set(roles), role=role, via=via)
        self._record_phi_view(
            run_id,
            agent=record.agent,
            viewer=who,
            role=held,
            via=via,
            patient_ref=None,
            detail={"view": what},
        )

    def _phi_viewer(
        self,
        run_id: str,
        viewer: str,
        entitled: set[str],
        *,
        role: str | None,
        via: Provenance | None,
    ) -> tuple[str, str | None]:
        """Who sees PHI entitled to ``entitled`` roles (their directory id), and in which role."""
        if via is not None and via.kind == "service":
            return viewer, role  # a service token: the channel has checked its roles
        pack = self.pack_for(run_id)
        person = pack.reviewer(viewer)
        if person is None:
            raise DecisionRefusedError(
                f"{viewer!r} is not in the reviewer directory of policy pack {pack.name}",
                code="unknown_reviewer",
                hint="see 'carebound reviewers' for the ids that may view and decide holds",
            )
        usable = set(person.roles) & entitled
        if role is not None:
            usable &= {role}
        if not usable:
            needed = ", ".join(sorted(entitled)) or "(none: the run has no holds)"
            raise DecisionRefusedError(
                f"{viewer!r} may not see this PHI: it is for role {needed}",
                code="wrong_role",
                hint=f"{person.id} holds: {', '.join(person.roles)}; ask a reviewer of {needed}",
            )
        return person.id, sorted(usable)[0]

    def _record_phi_view(
        self,
        run_id: str,
        *,
        agent: str,
        viewer: str,
        role: str | None,
        via: Provenance | None,
        patient_ref: str | None,
        detail: dict[str, str | bool | None],
    ) -> None:
        if via is not None:
            detail = {
                **detail,
                "channel": via.channel,
                "principal": via.principal or viewer,
                "authenticated": via.authenticated,
                "token": via.token,
            }
        self.audit_log.record(
            run_id,
            time=self.clock.now(),
            actor=Actor(kind="person", id=viewer, role=role),
            action="view_phi",
            category=self.agent(agent).category,
            outcome="success",
            patient_ref=patient_ref,
            detail=detail,
        )

    # -- deciding ------------------------------------------------------------------------

    @_store_errors
    def decide(self, approval_id: str, decision: Decision) -> DecideResult:
        """Apply a reviewer's decision; exactly one concurrent decider wins.

        Raises :class:`DecisionRefusedError` (wrong role, own run, stale args hash, an edit
        beyond the grant, ...) or :class:`AlreadyDecidedError` when someone decided first.
        """
        view = self._approval_and_pinned(approval_id)
        run_id = view.request.run_id
        pack = self.pack_for(run_id)
        if view.status != "pending" and view.record is not None:
            raise _already(approval_id, view.record.decided_by, view.record.decided_at)
        decision = decision.model_copy(
            update={"reviewer": normalize_reviewer_id(decision.reviewer)}
        )
        authorize_decision(pack, view, decision)
        approver = approver_identity(decision)
        edited, changes = self._edit_of(view, decision, pack)
        now = self.clock.now()
        status: ApprovalStatus = _DECIDED_STATUS.get(decision.kind, "pending")
        new_deadline = None
        if isinstance(decision, Escalate):
            new_deadline = now + (view.deadline - view.request.created_at)
        decided = view.model_copy(
            update={
                "status": status,
                "record": DecisionRecord(
                    status=status,
                    decision=decision,
                    decided_by=decision.reviewer,
                    decided_at=from_ms(to_ms(now)),  # as stored: ms precision
                    approvers=_approvers_after(view, decision, approver, edited),
                    changes=changes,
                ),
            }
        )
        # One round trip: the run is marked for driving first (a process that dies after the
        # decision is stored leaves a marked run that recover() drives; a mark with nothing
        # to do is dropped at the next drive), then the decide step, then, should the decision
        # end the hold, the run's lease with the drive's reads and the decision's audit event
        # guarded on this step having won (a losing or partial decider writes no event and
        # gives the lease back).
        decide_id = uuid.uuid4().hex
        guard = self.approvals.won_guard(approval_id, decide_id)

        def queue(pipe: redis.client.Pipeline) -> Callable[[list[Any]], _DecideTrip]:
            self._mark_drive(run_id, pipe)
            parse_decide = self.approvals.queue_decide(
                pipe, approval_id, decision, now=now, status=status,
                escalate_deadline=new_deadline, decide_id=decide_id,
                approver=approver, edited=edited, changes=changes,
            )  # fmt: skip
            if status == "pending":  # an escalation: the hold stays, nothing to drive
                return lambda replies: (parse_decide(replies[1]), None)
            parse_lease = self._queue_lease_reads(pipe, run_id, decided, guard=guard)
            return lambda replies: (parse_decide(replies[1]), parse_lease(replies[2:]))

        result, acquired = run_parsed(self.client, queue)
        outcome = result.outcome
        if outcome != "ok" and acquired is not None and acquired.lease is not None:
            self._leases.release(acquired.lease)
        if outcome == "decided":
            raise _already(approval_id, result.decided_by or "?", result.decided_at)
        if outcome == "stale":
            raise DecisionRefusedError(
                f"approval {approval_id} changed since it was read (stale args hash)",
                code="stale",
                hint="reload the approval and decide again",
            )
        if outcome == "wrong_role":
            raise DecisionRefusedError(
                f"approval {approval_id} now needs role {result.current_role!r}",
                code="wrong_role",
                hint="it was escalated; ask a reviewer with that role",
            )
        if outcome == "same_approver":
            raise DecisionRefusedError(
                f"{approver!r} already approved {approval_id} with these arguments",
                code="same_approver",
                hint="a second, different reviewer must approve",
            )
        if outcome == "missing":
            raise NotFoundError(f"no approval {approval_id!r}")
        if outcome in ("partial", "escalated"):
            audited_view = decided if outcome == "partial" else view  # with its approvers
            self._audit_decision(audited_view, decision, outcome, at=now, changes=changes)
        # A final decision is audited in the round trip above when it won, else by the drive
        # that resumes the run, under the run's lease, exactly once even if this process dies
        # right after the decision was stored.
        if outcome == "partial":
            return DecideResult(
                outcome="awaiting_second_approver", run=self.get(run_id), changes=changes
            )
        if outcome == "escalated":
            assert isinstance(decision, Escalate) and new_deadline is not None
            self.approvals.reindex(approval_id, view.required_role, decision.to_role, new_deadline)
            return DecideResult(outcome="escalated", run=self.get(run_id))
        run = self._drive(run_id, lease_wait_s=5.0, decided=decided, acquired=acquired)
        return DecideResult(outcome="decided", run=run, changes=changes)

    def _edit_of(
        self, view: ApprovalView, decision: Decision, pack: PolicyPack
    ) -> tuple[ApprovalRequest | None, list[ArgChange]]:
        """What an approve or edit does to the call's arguments: the request a two-person hold
        keeps pending with an edit's new arguments (None: none), and the changes from the
        agent's proposal to the arguments that will run."""
        request = view.request
        if isinstance(decision, Edit):
            spec = self.agent(request.agent).tools[request.tool]
            args = self._check_edit(view, decision, pack)
            after, new_hash = args.model_dump(mode="json"), spec.args_hash(args)
        elif decision.kind == "approve":
            after, new_hash = request.args, request.args_hash
        else:
            return None, []
        proposed = request.original_args if request.original_args is not None else request.args
        spec_or_none = self.agent(request.agent).tools.get(request.tool)

        def is_phi(name: str) -> bool:
            if spec_or_none is None:
                return True  # a tool this install does not know: assume the worst
            return bool(spec_or_none.phi) and name not in spec_or_none.public_args

        changes = args_diff(proposed, after, is_phi=is_phi)
        edited = None
        if request.two_person and new_hash != request.args_hash:
            edited = request.model_copy(
                update={"args": after, "args_hash": new_hash, "original_args": proposed}
            )
        return edited, changes

    def _check_edit(self, view: ApprovalView, decision: Edit, pack: PolicyPack) -> BaseModel:
        """The edited arguments, validated and checked against the grant and the policy."""
        request = view.request
        definition = self.agent(request.agent)
        spec = definition.tools[request.tool]
        try:
            args: BaseModel = spec.validate(decision.args)
        except ValidationError as exc:
            raise invalid_edit_error(spec.name, spec.args_schema, exc) from None
        permission = check_permission(pack.agent_policy(definition.name).grant, spec, args)
        if not permission.allowed:
            raise DecisionRefusedError(
                f"the edit goes beyond the agent's grant: {permission.reason}",
                code="edit_beyond_grant",
                hint="edit within what the agent may do",
            )
        ctx = ToolContext(
            run_id=request.run_id,
            agent=definition.name,
            now=self.clock.now(),
            idempotency_key=spec.idempotency_key(request.run_id, args),
            world=self._world_for(request.run_id),
            case=self._case_for(request.run_id),
        )
        verdict = evaluate_rules(pack.rules, spec.name, spec.compute_facts(ctx, args))
        if verdict.decision == "deny":
            raise DecisionRefusedError(
                f"the edit is denied by policy rule {verdict.rule_id}: {verdict.rule_text}",
                code="edit_beyond_grant",
                hint="edit within the policy",
            )
        if verdict.decision == "hold" and verdict.role != decision.role:
            raise DecisionRefusedError(
                f"the edited call needs role {verdict.role!r} (rule {verdict.rule_id})",
                code="wrong_role",
                hint=f"ask a reviewer with role {verdict.role!r}",
            )
        return args

    def _audit_decision(
        self,
        view: ApprovalView,
        decision: Decision,
        outcome: str,
        *,
        at: datetime,
        once: str | None = None,
        changes: Sequence[ArgChange] = (),
    ) -> None:
        self.audit_log.record(
            view.request.run_id,
            once=once,
            **self._decision_event(view, decision, outcome, at, changes),
        )

    def _decision_event(
        self,
        view: ApprovalView,
        decision: Decision,
        outcome: str,
        at: datetime,
        changes: Sequence[ArgChange] = (),
    ) -> dict[str, Any]:
        """The audit fields of a decision on ``view``."""
        request = view.request
        return {
            "time": at,
            "actor": Actor(kind="person", id=decision.reviewer, role=decision.role),
            "action": "decision",
            "category": self.agent(request.agent).category,
            "outcome": "pending" if outcome in ("partial", "escalated") else "success",
            "patient_ref": request.patient_ref,
            "detail": decision_detail(view, decision, outcome, changes),
        }

    def _ensure_decision_audited(self, view: ApprovalView) -> None:
        """Write the final decision's audit event, once (idempotent on the approval id)."""
        record = view.record
        if record is None or record.decision is None:
            return
        outcome = "expired" if view.status == "expired" else "ok"
        self._audit_decision(
            view,
            record.decision,
            outcome,
            at=record.decided_at,
            once=f"decision:{view.request.approval_id}",
            changes=record.changes,
        )

    def _queue_decision_audit(
        self, pipe: redis.client.Pipeline, view: ApprovalView, *, guard: Guard | None = None
    ) -> Callable[[Any], bool]:
        """``_ensure_decision_audited`` queued on ``pipe``; see ``AuditLog.queue_record``."""
        record = view.record
        assert record is not None and record.decision is not None
        outcome = "expired" if view.status == "expired" else "ok"
        fields = self._decision_event(
            view, record.decision, outcome, record.decided_at, record.changes
        )
        once = f"decision:{view.request.approval_id}"
        return self.audit_log.queue_record(
            pipe, view.request.run_id, once=once, guard=guard, **fields
        )

    # -- events, timers, recovery --------------------------------------------------------

    @_store_errors
    def deliver(
        self, match: str, payload: Mapping[str, Any] | None = None, *, event_id: str | None = None
    ) -> list[str]:
        """Deliver an external event (e.g. a document arrived) to the runs subscribed to it.

        A run subscribes to a match key when it first waits on it and stays subscribed until
        it ends. A run waiting now is woken; one that is busy or paused on a hold gets the
        event queued and reads it at its next wait, so nothing that arrives in between is
        lost. Returns the ids of the runs the event was delivered to. Delivering the same
        ``event_id`` twice is a no-op.
        """
        check_event_input(match, payload, event_id)  # before any write: see start()
        delivered = []
        event_id = event_id or f"ev-{uuid.uuid4().hex[:12]}"
        for run_id in self.runs.waiting_for(match):
            record = self.runs.get(run_id)
            if record is None or record.status in FINAL_STATUSES:
                self.runs.clear_wait(run_id, [match])  # ended: unsubscribe it lazily
                continue
            event = RunEvent(
                id=event_id,
                kind="event",
                match=match,
                at=self.clock.now(),
                payload=json.loads(json.dumps(payload or {}, default=str)),
            )
            self._mark_drive(run_id)  # before the event: see decide()
            if self.runs.add_event(run_id, event):
                self.drive(run_id)
                delivered.append(run_id)
        return delivered

    @_store_errors
    def sweep(self) -> SweepReport:
        """Fire due timers, expire or escalate overdue holds, and recover stalled runs.

        Each run is handled on its own: one that fails is logged (by error class, no PHI),
        counted in ``runs_failed`` and left for a later sweep; the others go on. Only the
        store going away stops a sweep."""
        report = SweepReport()
        now = self.clock.now()
        for run_id, timer_id in self.runs.claim_due_timers(now):
            if self._isolated(report, run_id, "timer", self._fire_claimed, run_id, timer_id, now):
                report.timers_fired += 1
        for view in self.approvals.pending(overdue_at=now, limit=100):
            run_id = view.request.run_id
            self._isolated(report, run_id, "deadline", self._overdue, view, now, report)
        recovered = self.recover_runs(older_than_ms=60_000)
        report.runs_recovered = len(recovered.recovered)
        report.runs_failed += len(recovered.failed)
        report.runs_quarantined += len(recovered.quarantined)
        return report

    def _isolated(
        self, report: SweepReport, run_id: str, what: str, fn: Callable[..., Any], *args: Any
    ) -> bool:
        """Call ``fn(*args)`` for one run; True if it moved the run on. An unexpected error
        (not the store's) is logged and counted, and the sweep goes on with the next run."""
        try:
            view = fn(*args)
        except (StoreUnavailableError, redis.ConnectionError, redis.TimeoutError):
            raise
        except LeaseLostError:
            return False  # another process drives it
        except Exception as exc:
            _log.warning("sweep: %s of run %s failed: %s", what, run_id, type(exc).__name__)
            report.runs_failed += 1
            return False
        if isinstance(view, RunView) and view.record.failures:
            report.runs_failed += 1
            report.runs_quarantined += view.status == "quarantined"
        return True

    def _fire_claimed(self, run_id: str, timer_id: str, now: datetime) -> RunView:
        event = RunEvent(id=timer_id, kind="timer", at=now)
        self._mark_drive(run_id)  # before the event: see decide()
        self.runs.add_event(run_id, event)
        self.runs.timer_done(run_id, timer_id)
        return self.drive(run_id)

    def _may_escalate_on_timeout(self, view: ApprovalView, to_role: str) -> bool:
        """Whether the deadline may hand ``view`` to ``to_role``: only along a path the run's
        pack declares for the rule (else the hold expires instead)."""
        try:
            check_escalation(self.pack_for(view.request.run_id), view, to_role)
        except DecisionRefusedError:
            return False
        return True

    def _overdue(self, view: ApprovalView, now: datetime, report: SweepReport) -> RunView | None:
        """Escalate or expire one overdue hold."""
        request = view.request
        system = Actor(kind="system", id="deadline-sweep", role=None)
        if (
            request.on_timeout == "escalate"
            and request.escalate_to
            and self._may_escalate_on_timeout(view, request.escalate_to)
        ):
            decision: Decision = Escalate(
                reviewer=system.id,
                role=view.required_role,
                args_hash=request.args_hash,
                to_role=request.escalate_to,
                via=_WORKER,
            )
            deadline = now + (view.deadline - request.created_at)
            res = self.approvals.decide(
                request.approval_id,
                decision,
                now=now,
                status="pending",
                escalate_deadline=deadline,
            )
            if res.outcome == "escalated":
                self.approvals.reindex(
                    request.approval_id, view.required_role, request.escalate_to, deadline
                )
                self._audit_decision(view, decision, "escalated", at=now)
                report.holds_escalated += 1
            return None
        decision = Reject(
            reviewer=system.id,
            role=view.required_role,
            args_hash=request.args_hash,
            reason="the hold passed its deadline",
            via=_WORKER,
        )
        self._mark_drive(request.run_id)  # before the decision: see decide()
        res = self.approvals.decide(request.approval_id, decision, now=now, status="expired")
        if res.outcome != "ok":
            return None
        self.approvals.unindex(request.approval_id, view.required_role)
        report.holds_expired += 1
        return self.drive(request.run_id)

    @_store_errors
    def fire_timer(self, run_id: str, due: datetime) -> bool:
        """Fire one run's timer now (scenarios do this on their virtual clock)."""
        timer_id = f"timer-{to_ms(due)}"
        if not self.runs.claim_timer(run_id, timer_id):
            return False
        self._mark_drive(run_id)  # before the event: see decide()
        self.runs.add_event(run_id, RunEvent(id=timer_id, kind="timer", at=self.clock.now()))
        self.runs.timer_done(run_id, timer_id)
        self.drive(run_id)
        return True

    @_store_errors
    def recover(self, *, older_than_ms: int = 0) -> list[str]:
        """Drive every run left marked by a process that died mid-drive. Returns the ids of
        those driven to their next stop; see :meth:`recover_runs` for the failures too."""
        return self.recover_runs(older_than_ms=older_than_ms).recovered

    @_store_errors
    def recover_runs(self, *, older_than_ms: int = 0) -> RecoverReport:
        """Drive every run left marked (by a process that died mid-drive, or a drive that
        failed) for at least ``older_than_ms``, each on its own: a run whose drive fails is
        logged by error class (no PHI), reported in ``failed`` and retried by a later recover
        until it fails ``QUARANTINE_AFTER`` times in a row, then quarantined. Never stops
        for one run; only the store going away stops it."""
        cutoff = to_ms(self.clock.now()) - older_than_ms
        ids = [text(i) for i in self.client.zrangebyscore(self._drive_key, "-inf", cutoff)]
        report = RecoverReport()
        for run_id in ids:
            try:
                if self.runs.get(run_id) is None:
                    continue  # its start died before writing the record; a retried start drives it
                view = self.drive(run_id, lease_wait_s=0)
            except (StoreUnavailableError, redis.ConnectionError, redis.TimeoutError):
                raise
            except LeaseLostError:
                continue  # another process took it over: it drives it
            except Exception as exc:
                report.failed.append(run_id)
                if self._count_unreadable_failure(run_id, exc):
                    report.quarantined.append(run_id)
                continue
            if view.record.failures:
                report.failed.append(run_id)
                if view.status == "quarantined":
                    report.quarantined.append(run_id)
            elif view.status != "running":
                report.recovered.append(run_id)
        return report

    def _count_unreadable_failure(self, run_id: str, exc: Exception) -> bool:
        """Count a failure that happened before the run's record could be used (it is
        unreadable, or its pinned data is); quarantine the run on the ``QUARANTINE_AFTER``th.
        Returns whether it was quarantined."""
        name = type(exc).__name__
        failures = int(self.client.hincrby(self._failures_key, run_id, 1))
        _log.warning("recover: run %s failed with %s (%d in a row)", run_id, name, failures)
        if failures < QUARANTINE_AFTER:
            return False
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self._drive_key, run_id)
        pipe.zadd(self._quarantine_key, {run_id: to_ms(self.clock.now())})
        pipe.hdel(self._failures_key, run_id)
        pipe.execute()
        _log.warning("recover: run %s quarantined", run_id)
        return True

    @_store_errors
    def quarantined(self) -> list[str]:
        """Ids of the quarantined runs, oldest first (``carebound runs --status quarantined``
        lists those whose record can be read)."""
        return [text(i) for i in self.client.zrange(self._quarantine_key, 0, -1)]

    @_store_errors
    def cancel(self, run_id: str, *, by: str, reason: str = "") -> RunView:
        """Stop a run for good; its pending hold leaves the inbox."""
        acquired = self._acquire_with_record(run_id, 5.0)
        lease, record = acquired.lease, acquired.record
        if lease is None:
            raise RunStateError(f"run {run_id} is busy in another process", hint="try again")
        try:
            if record.status in FINAL_STATUSES:
                raise RunStateError(f"run {run_id} already ended ({record.status})")
            if record.pending_approval:
                view = self.approvals.get(record.pending_approval)
                if view is not None:
                    self.approvals.unindex(record.pending_approval, view.required_role)
            self.runs.update(
                record.model_copy(
                    update={
                        "status": "cancelled",
                        "summary": reason or f"cancelled by {by}",
                        "pending_approval": None,
                        "updated_at": self.clock.now(),
                    }
                )
            )
            self.client.zrem(self._drive_key, run_id)
            self.runs.forget_waits(run_id)
            self.audit_log.record(
                run_id,
                time=self.clock.now(),
                actor=Actor(kind="person", id=by, role=None),
                action="update",
                category=self.agent(record.agent).category,
                outcome="success",
                detail={"status": "cancelled"},
            )
        finally:
            self._leases.release(lease)
        return self.get(run_id)

    # -- audit ---------------------------------------------------------------------------

    @_store_errors
    def audit(self, run_id: str) -> list[AuditEvent]:
        """A run's audit trail, oldest first; entries that cannot be read are left out
        (:meth:`verify` reports them as a broken chain)."""
        self._record(run_id)
        return self.audit_log.events(run_id, strict=False)

    @_store_errors
    def verify(self, run_id: str) -> VerifyResult:
        """Check a run's audit hash chain (hashes, MACs, head and anchor)."""
        self._record(run_id)
        return self.audit_log.verify(run_id, exists=True)

    @_store_errors
    def audit_trail(
        self, run_id: str, *, checkpoints: Sequence[AuditCheckpoint] = ()
    ) -> AuditTrail:
        """A run's readable audit events and the check of its chain, read together (an
        unreadable entry is a broken chain, not an error); ``checkpoints``: the run's
        exported checkpoints to check the chain against."""
        self._record(run_id)
        return self.audit_log.trail(run_id, exists=True, checkpoints=checkpoints)

    def ping(self) -> None:
        """Check the store answers; raises :class:`StoreUnavailableError` if not."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise StoreUnavailableError(
                f"the run store does not answer: {exc}",
                hint="start Redis or check CAREBOUND_REDIS_URL",
            ) from None


def _is_drive_failure(exc: Exception) -> bool:
    """Whether ``exc``, raised while a run's graph ran, is the run's own failure (a bug, bad
    data, a broken agent) rather than the store going away or the lease changing hands."""
    return not isinstance(exc, redis.RedisError | StoreUnavailableError | LeaseLostError)


def _approvers_after(
    view: ApprovalView, decision: Decision, approver: str, edited: ApprovalRequest | None
) -> list[str]:
    """A two-person hold's approvers once ``decision`` is counted (as the store counts them):
    an edit that changed the arguments starts the count again."""
    if not view.request.two_person or decision.kind not in ("approve", "edit"):
        return list(view.approvers)
    return [approver] if edited is not None else [*view.approvers, approver]


def _no_run(run_id: str) -> NotFoundError:
    return NotFoundError(f"no run {run_id!r}", hint="list runs with 'carebound runs'")


def _no_approval(approval_id: str) -> NotFoundError:
    return NotFoundError(
        f"no approval {approval_id!r}", hint="list paused steps with 'carebound inbox'"
    )


def _already(approval_id: str, by: str, at: datetime | None) -> AlreadyDecidedError:
    when = at.isoformat() if at else "?"
    return AlreadyDecidedError(
        f"approval {approval_id} was already decided by {by} at {when}",
        decided_by=by,
        decided_at=when,
    )


def _default_agents() -> dict[str, AgentDefinition]:
    from carebound.agents import registry

    return registry()


def _default_world() -> Any:
    try:
        from carebound.tools.connectors import World
    except ImportError:
        return None

    def attach(client: redis.Redis, run_id: str, prefix: str) -> Any:
        return World.attach(client, run_id, prefix=prefix)

    return attach
