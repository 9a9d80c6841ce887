"""Run records, events, timers and waits in Redis.

Per run (hash tag ``{run_id}``)::

    {prefix}:{run}:run            hash: the record (``record_fields``), ``pack`` and ``phi``
                                  (the pinned pack's and PHI table's digests), ``world`` (mark),
                                  the run's key registry (``approval:<id>`` fields): values of
                                  64 bytes at most keep it a listpack (about half a hashtable)
    {prefix}:{run}:case           string: the case (deflated JSON)
    {prefix}:{run}:events         hash: event id -> event JSON (delivery is idempotent per id)
    {prefix}:{run}:events:queue   list: event ids not yet consumed by the run, oldest first
    {prefix}:{run}:waits          set: the match keys the run is subscribed to

Runs stored by the layout before (a ``record`` JSON field, the case in the hash, ``policy``
holding ``sha256:<digest>``) are not read: no deployment holds any.

Across runs (each written on its own)::

    {prefix}:runs                 zset: run id -> created ms (the registry)
    {prefix}:{timers}:due         zset: run id|event id -> due ms
    {prefix}:{timers}:claimed     zset: claimed timers -> claim ms (reclaimed if a worker died)
    {prefix}:wait:<match key>     set: run ids subscribed to events with that match key
    {prefix}:pack:<digest>        string: a pinned policy pack (JSON), stored once per content
                                  digest (``pack_digest``); a run's ``pack`` field holds it
    {prefix}:phi:<digest>         string: an agent's PHI table (JSON), likewise
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis

from carebound.clock import to_ms
from carebound.state import stored_json
from carebound.state.keys import (
    DEFAULT_PREFIX,
    SYSTEM_UP,
    global_key,
    run_key,
    text,
    wait_systems_key,
)
from carebound.state.lua import script
from carebound.state.pipeline import Guard, Pipeline, guarded_hset_queued, run
from carebound.state.run_record import (
    FINAL_STATUSES,
    READ_FIELDS,
    RECORD_FIELDS,
    RunRecord,
    RunStatus,
    changed_fields,
    parse_record,
    queue_record,
    record_fields,
)
from carebound.state.stored_json import pack_digest

if TYPE_CHECKING:  # the agent contract (guardrails, tools) stays unloaded for readers of runs
    from carebound._agent import RunEvent

__all__ = [  # the record's names are kept here too (carebound.state.run_record has them)
    "FINAL_STATUSES", "RECORD_FIELDS", "PinnedReply", "RunRecord", "RunStatus", "RunStore",
    "case_json", "pack_digest", "parse_pinned", "parse_record", "queue_record", "record_fields",
]  # fmt: skip

_T = TypeVar("_T")

_ADD_EVENT = script("run_add_event")
_PEEK_EVENT = script("run_peek_event")
_CLAIM_TIMERS = script("run_claim_timers")


PinnedReply = tuple[bytes | str | None, bytes | str | None, bytes | str | None]
"""A run's pinned pack digest, case JSON and world mark, as stored (None: not there)."""


def case_json(case: Mapping[str, Any]) -> str:
    """A run's case as stored, before deflating (against the cases' dictionary,
    ``carebound.state.stored_json``; runs stored before, plain or ``~z:``, still read)."""
    return json.dumps(case, separators=(",", ":"))


def parse_pinned(replies: Any) -> PinnedReply:
    """The two replies of ``RunStore.queue_pinned``: the pack digest, the case's JSON
    (inflated) and the world mark, each None when absent."""
    (pack, world), case = replies
    return pack, None if case is None else stored_json.CASE.unpack(case), world


def _is_set(reply: Any) -> bool:
    return reply is not None


class RunStore:
    """Run records and everything that wakes a run, on one Redis server."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix
        timers = "{timers}"
        self._due = global_key(prefix, timers, "due")
        self._claimed = global_key(prefix, timers, "claimed")
        self._packs_stored: set[str] = set()
        """Digests of the packs this process has stored (each is written once, ``NX``)."""
        self._phi_tables: dict[str, str] = {}
        """PHI tables by content digest that this process stored or read (immutable)."""

    def _key(self, run_id: str, *parts: str) -> str:
        return run_key(self._prefix, run_id, *parts)

    # -- records -------------------------------------------------------------------------

    def create(
        self,
        record: RunRecord,
        *,
        case: Mapping[str, Any] | str,
        policy_json: str,
        world_seeded: bool = False,
        phi_json: str | None = None,
        claimed: bool = False,
        then: Callable[[Pipeline], Callable[[list[Any]], _T]] | None = None,
    ) -> _T | None:
        """Register a new run, store its policy pack once per content digest, then store the
        run with its case (or its :func:`case_json`) and a reference to the pack, in one trip,
        in that order (a registered id without a record is skipped). ``world_seeded`` records
        that the run's simulated world was seeded before the run was stored; ``phi_json`` pins
        its agent's PHI table, so readers mask without loading the agent; ``claimed``: the
        start claimed the id it names (``run_ids.claim_run_id``). ``then`` queues more on that
        trip, after the run (a start's lease take): what the parser it returns makes of their
        replies is returned (None without ``then``)."""
        digest = pack_digest(policy_json)
        fields = record_fields(record)
        fields["pack"] = digest
        if world_seeded:
            fields["world"] = "seeded"
        phi_digest = None if phi_json is None else pack_digest(phi_json)
        if phi_digest is not None:
            fields["phi"] = phi_digest
        parse_then: list[Any] = []  # where then's replies begin, and their parser

        def fill(pipe: Pipeline) -> None:
            pipe.zadd(global_key(self._prefix, "runs"), {record.run_id: to_ms(record.created_at)})
            if digest not in self._packs_stored:
                pipe.set(self.pack_key(digest), policy_json, nx=True)
            if phi_digest is not None and phi_digest not in self._phi_tables:
                pipe.set(self.phi_key(phi_digest), cast(str, phi_json), nx=True)
            text = case if isinstance(case, str) else case_json(case)
            pipe.set(self._key(record.run_id, "case"), stored_json.CASE.pack(text))
            pipe.hset(self._key(record.run_id, "run"), mapping=fields)
            if claimed:  # the start's claim on its id (run_ids), once the record holds the id
                pipe.delete(self._key(record.run_id, "claim"))
            if then is not None:
                parse_then[:] = [len(pipe), then(pipe)]

        replies = run(self._r, fill)  # carries what rides ahead of it (Trips.starting)
        self._packs_stored.add(digest)
        if phi_digest is not None:
            self._phi_tables[phi_digest] = cast(str, phi_json)
        at, parse = parse_then or (0, None)
        return None if parse is None else cast(_T, parse(replies[at:]))

    def pack_key(self, digest: str) -> str:
        """The key of the pinned pack with this content digest (shared by every run on it)."""
        return global_key(self._prefix, "pack", digest)

    def phi_key(self, digest: str) -> str:
        """The key of a PHI table by content digest (shared by every run of its agent)."""
        return global_key(self._prefix, "phi", digest)

    def pack_json(self, digest: str) -> bytes | None:
        """A pinned pack by content digest (JSON, as stored), or None."""
        raw = self._r.get(self.pack_key(digest))
        return raw.encode() if isinstance(raw, str) else raw

    def get(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        return parse_record(self._r.hmget(self._key(run_id, "run"), READ_FIELDS))

    def queue_get(
        self, pipe: redis.client.Pipeline, run_id: str
    ) -> Callable[[Any], RunRecord | None]:
        """Queue the read of the run's record on ``pipe``; returns the parser of its reply
        (``parse_record``)."""
        queue_record(pipe, self._key(run_id, "run"))
        return parse_record

    parse_record = staticmethod(parse_record)

    def queue_pinned(
        self, pipe: redis.client.Pipeline, run_id: str
    ) -> Callable[[Any], PinnedReply]:
        """Queue the two reads of the run's pinned policy pack digest, world mark and case on
        ``pipe`` (all None for an unknown run; the mark is set when the run's simulated world
        was seeded at start); returns the parser of their two replies (the pack digest, the
        case and the mark, as a tuple)."""
        pipe.hmget(self._key(run_id, "run"), ["pack", "world"])
        pipe.get(self._key(run_id, "case"))
        return parse_pinned

    def case(self, run_id: str) -> dict[str, Any]:
        """The case the run was started on."""
        raw = self._r.get(self._key(run_id, "case"))
        return dict(json.loads(stored_json.CASE.unpack(raw))) if raw else {}

    def stored_in_an_older_format(self, run_id: str) -> bool:
        """Whether the run's hash is in the form carebound kept before its record was stored
        field by field (one ``record`` JSON field, the pack and case inline), which this
        version does not read."""
        return bool(self._r.hexists(self._key(run_id, "run"), "record"))

    def pinned_policy(self, run_id: str) -> bytes | str | None:
        """The digest of the policy pack the run pinned (its ``pack`` field), or None."""
        raw: bytes | str | None = self._r.hget(self._key(run_id, "run"), "pack")
        return raw

    def policy_json(self, run_id: str) -> bytes | None:
        """The policy pack the run was started with (JSON), or None."""
        digest = self.pinned_policy(run_id)
        return None if digest is None else self.pack_json(text(digest))

    def phi_json(self, run_id: str) -> bytes | str | None:
        """The PHI table the run pinned at start (JSON), or None (an unknown run, or one
        started without a table)."""
        raw: bytes | str | None = self._r.hget(self._key(run_id, "run"), "phi")
        if raw is None:
            return None
        digest = text(raw)
        table = self._phi_tables.get(digest)
        if table is None:
            stored = self._r.get(self.phi_key(digest))
            if stored is None:
                return None
            table = self._phi_tables[digest] = text(stored)
        return table

    def update(
        self,
        record: RunRecord,
        *,
        pipe: redis.client.Pipeline | None = None,
        guard: Guard | None = None,
        stored: RunRecord | None = None,
    ) -> None:
        """Replace the run's record (only queued when ``pipe`` is given). With ``guard`` (the
        run's lease, held), it is queued on ``pipe`` to be written only while the guard holds:
        its reply is 1 when written, 0 when refused; ``stored``: the record the run's hash
        holds (read under that lease), so only the fields that differ are written."""
        key = self._key(record.run_id, "run")
        fields, unused = changed_fields(record, stored)
        if guard is None:
            queue = pipe if pipe is not None else self._r.pipeline(transaction=False)
            queue.hdel(key, *unused)
            queue.hset(key, mapping=fields)
            if pipe is None:
                queue.execute()
            return
        assert pipe is not None, "a guarded update is queued on a pipeline"
        guarded_hset_queued(pipe, key, fields, guard, delete=unused)

    def page(self, *, limit: int = 50, offset: int = 0) -> list[RunRecord]:
        """Runs, newest first."""
        ids = self._r.zrevrange(global_key(self._prefix, "runs"), offset, offset + limit - 1)
        pipe = self._r.pipeline(transaction=False)
        for raw_id in ids:
            queue_record(pipe, self._key(text(raw_id), "run"))
        return [r for r in map(parse_record, pipe.execute()) if r is not None]

    def matching(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, of ``status`` and ``agent`` when given (pages through the
        registry until ``limit`` match)."""
        out: list[RunRecord] = []
        offset = 0
        while len(out) < limit:
            page = self.page(limit=200, offset=offset)
            if not page:
                break
            offset += len(page)
            out.extend(
                r
                for r in page
                if (status is None or r.status == status) and (agent is None or r.agent == agent)
            )
        return out[:limit]

    def all_ids(self) -> list[str]:
        """Every registered run id (for recovery sweeps, not hot paths)."""
        return [text(i) for i in self._r.zrange(global_key(self._prefix, "runs"), 0, -1)]

    # -- events --------------------------------------------------------------------------

    def add_event(self, run_id: str, event: RunEvent) -> bool:
        """Queue an event for a run; a second delivery of the same event id is ignored."""
        keys = [self._key(run_id, "events"), self._key(run_id, "events", "queue")]
        return bool(_ADD_EVENT(self._r, keys, [event.id, event.model_dump_json()]))

    def queue_has_event(self, pipe: redis.client.Pipeline, run_id: str) -> Callable[[Any], bool]:
        """Queue on ``pipe`` a read whose reply is not None when the run has an event to
        consume; returns the parser of its reply (True: an event is queued)."""
        pipe.lindex(self._key(run_id, "events", "queue"), 0)
        return _is_set

    def peek_event(self, run_id: str) -> RunEvent | None:
        """The oldest unconsumed event of a run (one round trip)."""
        from carebound._agent import RunEvent

        raw = _PEEK_EVENT(
            self._r, [self._key(run_id, "events", "queue"), self._key(run_id, "events")], []
        )
        return RunEvent.model_validate_json(raw) if raw else None

    def consume_event(self, run_id: str, event_id: str) -> None:
        """Mark the oldest event consumed (after the run checkpointed it): one round trip
        through ``carebound.state.pipeline``, so a drive's checkpoint that records the event,
        still riding (``carebound.checkpoint._session``), is stored ahead of it."""
        key = self._key(run_id, "events", "queue")
        run(self._r, lambda pipe: pipe.lrem(key, 1, event_id))

    # -- waits and timers ----------------------------------------------------------------

    def register_wait(
        self,
        run_id: str,
        match: list[str],
        until: datetime | None,
        *,
        pipe: redis.client.Pipeline | None = None,
    ) -> None:
        """Index a waiting run by its match keys and its wake-up time (only queued when
        ``pipe`` is given)."""
        queue = pipe if pipe is not None else self._r.pipeline(transaction=False)
        for key in match:
            queue.sadd(global_key(self._prefix, "wait", key), run_id)
            if key.startswith(SYSTEM_UP):  # parked on a system: the operators' views find it
                queue.sadd(wait_systems_key(self._prefix), key)
        if match:
            queue.sadd(self._key(run_id, "waits"), *match)
        if until is not None:
            queue.zadd(self._due, {f"{run_id}|timer-{to_ms(until)}": to_ms(until)})
        if pipe is None:
            queue.execute()

    def clear_wait(self, run_id: str, match: list[str]) -> None:
        """Unsubscribe a run from these match keys."""
        if not match:
            return
        pipe = self._r.pipeline(transaction=False)
        for key in match:
            pipe.srem(global_key(self._prefix, "wait", key), run_id)
        pipe.srem(self._key(run_id, "waits"), *match)
        pipe.execute()

    def forget_waits(self, run_id: str) -> None:
        """Unsubscribe an ended run from every match key it waited on."""
        keys = [text(k) for k in self._r.smembers(self._key(run_id, "waits"))]
        self.clear_wait(run_id, keys)

    def waiting_for(self, match: str) -> list[str]:
        """Runs subscribed to events with this match key: a run subscribes when it first
        waits on the key and stays subscribed until it ends (events that arrive while it is
        busy or paused on a hold are queued for its next wait)."""
        members = self._r.smembers(global_key(self._prefix, "wait", match))
        return sorted(text(m) for m in members)

    def claim_due_timers(
        self, now: datetime, *, reclaim_after_ms: int = 60_000, limit: int = 100
    ) -> list[tuple[str, str]]:
        """Atomically claim due timers (and timers a dead worker claimed long ago)."""
        now_ms = to_ms(now)
        raw = _CLAIM_TIMERS(
            self._r,
            [self._due, self._claimed],
            [now_ms, now_ms - reclaim_after_ms, limit, now_ms],
        )
        out = []
        for member in raw:
            run_id, _, timer_id = text(member).partition("|")
            out.append((run_id, timer_id))
        return out

    def claim_timer(self, run_id: str, timer_id: str) -> bool:
        """Claim one specific timer (it fires once even if a sweep races for it)."""
        member = f"{run_id}|{timer_id}"
        pipe = self._r.pipeline(transaction=True)
        pipe.zrem(self._due, member)
        pipe.zadd(self._claimed, {member: 0})
        removed, _ = pipe.execute()
        return bool(removed)

    def timer_done(self, run_id: str, timer_id: str) -> None:
        """Forget a claimed timer once its event is queued."""
        self._r.zrem(self._claimed, f"{run_id}|{timer_id}")
