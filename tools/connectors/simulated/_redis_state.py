"""Redis state shared by the simulated connectors: keys, the effect record, apply-once writes.

Every key of a simulated world lives under the run's hash tag::

    {prefix}:{<run_id>}:world:<system>:<part>...

so a world's writes stay atomic on Redis Cluster too. An external effect (a fax, an EHR write)
is applied by one Lua script that, in a single atomic step:

1. returns the earlier record if the idempotency key is already in the system's effect hash;
2. checks *guards*: hash fields that must still hold the value the caller read (compare-and-set,
   so two writers of one resource cannot lose an update; the caller re-reads and retries);
3. runs the state writes;
4. records the effect with ``HSETNX`` on the idempotency key (JSON, never pickle) and appends the
   key to the system's effect order.

Each public effectful call also counts one *attempt* (repeats included), so tests can tell
"called twice" from "happened twice".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, JsonValue

from carebound.state.keys import run_key
from carebound.state.lua import script
from carebound.state.pipeline import Pipeline, call_script, ride_script
from carebound.state.pipeline import run as run_pipeline
from carebound.state.segment_reads import (
    Hash,
    Known,
    forget_reads,
    hashes_after_hset,
    in_segment,
    prefetch_wanted,
    prefetched,
    remember_hashes,
    remembered_field,
    remembered_hash,
)
from carebound.tools.connectors._errors import ConnectorError

System = Literal["ehr", "outreach", "payer", "erp"]
"""The external systems a world simulates."""

_ID_NAMESPACE = uuid.UUID("8d4f6f0e-3c1b-5b8e-9a51-0c6f3f0d2b7e")
_MAX_RETRIES = 100

_APPLY_ONCE = script("world_apply_once")
_READ_ALL = script("world_read_all")


class EffectRecord(BaseModel):
    """One external effect a simulated system applied: stored once per idempotency key."""

    model_config = ConfigDict(frozen=True)

    system: System
    """The system that applied it."""
    idempotency_key: str
    """The key it was applied under; a repeat with this key returns this record's result."""
    action: str
    """What was done, e.g. ``"send"``, ``"create"``, ``"update_fields"``, ``"approve_invoice"``."""
    payload: dict[str, JsonValue]
    """What changed (for updates: each field's ``before`` and ``after``)."""
    result: JsonValue
    """What the call returned, as JSON; a repeated call returns it again."""


@dataclass
class WriteBatch:
    """Guards and writes to apply in one atomic step (see the module docstring).

    Keys are passed to Redis as ``KEYS`` (all under one run's hash tag); values are strings.
    """

    keys: list[str] = field(default_factory=list)
    guards: list[list[Any]] = field(default_factory=list)
    ops: list[list[Any]] = field(default_factory=list)

    def _index(self, key: str) -> int:
        if key not in self.keys:
            self.keys.append(key)
        return self.keys.index(key) + 1

    def guard(self, key: str, field_name: str, expected: str | None) -> None:
        """Apply only if hash field ``key[field_name]`` still equals ``expected`` (None: absent)."""
        self.guards.append([self._index(key), field_name, expected])

    def op(self, command: str, key: str, *args: str) -> None:
        """Add a write: one of HSET, HDEL, HSETNX, HINCRBY, ZADD, RPUSH on ``key``."""
        self.ops.append([command, self._index(key), *args])


class GuardFailed(Exception):  # noqa: N818 - a retry signal, not an error
    """Internal signal: a guarded field changed between read and write; re-read and retry."""


def _with_registry(keys: Sequence[str], args: list[Any]) -> tuple[list[str], list[Any]]:
    """The script's KEYS and ARGV with the world's key registry and key base length added (the
    script registers every key it writes, so retention finds the world's keys): the world's
    own ``world:meta`` hash, whose fields that start with ``world:`` name the world's keys, so
    the run's key registry lists only what a run on real connectors has too (its holds)."""
    first = keys[0]
    base = first[: first.index("}:") + 2]  # '<prefix>:{<run>}:': every key is the run's
    return [*keys, base + "world:meta"], [*args, len(base)]


def apply_writes(client: redis.Redis, batch: WriteBatch) -> None:
    """Apply guarded writes that are not an effect (seeding, inbound events) atomically.

    Raises:
        GuardFailed: a guard did not hold; nothing was written.
    """
    if not batch.keys:
        return
    keys, args = _writes_call(batch)
    reply = call_script(client, _APPLY_ONCE, keys, args)
    if int(reply[0]) == 2:
        raise GuardFailed


def ride_writes(
    client: redis.Redis, batch: WriteBatch, landed: Callable[[bool | None], None]
) -> bool:
    """Have the writes of ``apply_writes`` ride ahead of the next round trip (inside
    ``carebound._wire.riding``: see ``carebound.state.pipeline.ride_script``); ``landed`` then
    gets True (applied), False (a guard did not hold: nothing written) or None (the server had
    lost the script: nothing ran). False, and nothing queued, outside a riding block."""
    keys, args = _writes_call(batch)

    def on_reply(reply: Any) -> None:
        landed(None if reply is None else int(reply[0]) != 2)

    return ride_script(client, _APPLY_ONCE, keys, args, on_reply)


def ride_prefetch(client: redis.Redis, registry: str) -> None:
    """Inside ``segment_reads.prefetching`` and a riding block, have the world of ``registry``
    read whole ahead of the next round trip, for the next segment's first read of it (a new
    run's world, read right after its seeding rode ahead of the same round trip)."""
    if not prefetch_wanted():
        return
    base = registry[: -len("world:meta")]

    def landed(flat: Any) -> None:
        if flat is not None:  # None: the server had lost the script; the segment reads it
            prefetched(registry, _whole(flat, base))

    ride_script(client, _READ_ALL, [registry], [base], landed)


def _whole(flat: Sequence[Any], base: str) -> dict[str, Hash]:
    """The reply of ``world_read_all`` as key -> hash."""
    return {
        base + text(suffix): _pairs(pairs)
        for suffix, pairs in zip(flat[::2], flat[1::2], strict=True)
    }


def _writes_call(batch: WriteBatch) -> tuple[list[str], list[Any]]:
    keys, args = _with_registry(
        batch.keys, [json.dumps({"guards": batch.guards, "ops": batch.ops})]
    )
    forget_reads(keys)
    return keys, args


def text(value: bytes | str) -> str:
    """Decode a Redis reply whether or not the client uses ``decode_responses``."""
    return value.decode() if isinstance(value, bytes) else value


class ConnectorState:
    """The Redis state of one simulated system of one run.

    Args:
        client: a sync Redis client (``decode_responses`` either way).
        run_id: the run whose world this is.
        prefix: the key prefix (tests pass a unique one).
        system: which system this state belongs to.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str, system: System) -> None:
        self.client = client
        self.run_id = run_id
        self.prefix = prefix
        self.system: System = system
        self._effects = self.key("effects")
        self._order = self.key("effect_order")
        self._attempts = self.key("attempts")
        self._registry = self.key("meta").replace(f":world:{system}:meta", ":world:meta")
        self._base = self._registry[: -len("world:meta")]

    def key(self, *parts: str) -> str:
        """The Redis key of ``parts`` in this system's part of the world."""
        return run_key(self.prefix, self.run_id, "world", self.system, *parts)

    def derived_id(self, *parts: str) -> str:
        """A stable id derived from the run and ``parts`` (same inputs, same id, any process)."""
        name = "\x1f".join((self.run_id, self.system, *parts))
        return str(uuid.uuid5(_ID_NAMESPACE, name))

    def hget(self, key: str, field_name: str) -> str | None:
        """Read one hash field as text (within a graph segment, from the world read whole:
        ``segment_reads``)."""
        if in_segment():
            return self._remembered(key).get(field_name)
        raw = self.client.hget(key, field_name)
        return None if raw is None else text(raw)

    def hvals(self, key: str) -> list[str]:
        """Read every value of a hash as text (within a graph segment, from the world read
        whole: ``segment_reads``)."""
        if in_segment():
            return list(self._remembered(key).values())
        return [text(raw) for raw in self.client.hvals(key)]

    def _remembered(self, key: str) -> Hash:
        def take_all() -> dict[str, Hash]:
            return _whole(
                call_script(self.client, _READ_ALL, [self._registry], [self._base]), self._base
            )

        def fetch() -> Hash:
            return {text(f): text(v) for f, v in self.client.hgetall(key).items()}

        return remembered_hash(key, registry=self._registry, take_all=take_all, fetch=fetch)

    def apply(self, batch: WriteBatch) -> None:
        """Apply guarded writes that are not an effect (seeding, inbound events).

        Raises:
            GuardFailed: a guard did not hold; nothing was written.
        """
        apply_writes(self.client, batch)

    def apply_once(
        self,
        idempotency_key: str,
        action: str,
        compute: Callable[[list[str | None]], tuple[WriteBatch, dict[str, JsonValue], JsonValue]],
        *,
        reads: Sequence[tuple[str, str]] = (),
    ) -> EffectRecord:
        """Apply an effect at most once per ``idempotency_key`` and return its record.

        The call counts as one attempt. ``compute`` gets the current values of the ``reads``
        hash fields (``(key, field)`` pairs, read in the round trip that checks the key) and
        returns the guarded writes, the effect payload and the result; it runs again, on
        fresh values, if a guard fails (someone else wrote in between), and is not called at
        all when the key was already used. Errors it raises propagate, unless a concurrent
        call with the same key applied the effect meanwhile: then that call's record is
        returned.

        Raises:
            ConnectorError: the key was used before for a different action, or the state kept
                changing under this call.
        """
        self._check_key(idempotency_key)
        counted = False
        remembered = self._remembered_reads(reads)
        if remembered is not None:
            # First try on what this segment read: no round trip before the write; the
            # script still returns an earlier effect first, and the guards compare the reads
            counted = True
            outcome = self._try_remembered(idempotency_key, action, compute, reads, remembered)
            if isinstance(outcome, EffectRecord):
                return outcome
            counted = outcome
        for attempt in range(_MAX_RETRIES):
            prior, values = self._prior_and_reads(
                idempotency_key, reads, count=attempt == 0 and not counted
            )
            if prior is not None:
                return self._same_action(prior, action)
            try:
                batch, payload, result = compute(values)
            except ConnectorError:
                # A concurrent call with this key may have applied the effect after the check
                # above, changing the state ``compute`` refused (e.g. "already approved").
                prior = self.effect(idempotency_key)
                if prior is not None:
                    return self._same_action(prior, action)
                raise
            applied = self._apply(idempotency_key, action, batch, payload, result, count=False)
            if applied is not None:
                return applied
        raise ConnectorError(
            f"{self.system}: {action} could not be applied: the records it changes kept "
            f"changing ({_MAX_RETRIES} tries)",
            hint="too many writers on one record; retry the call later",
        )

    def _remembered_reads(self, reads: Sequence[tuple[str, str]]) -> list[Known] | None:
        """How the segment knows each of ``reads``, or None if it does not know one."""
        known = [remembered_field(key, name, registry=self._registry)[0] for key, name in reads]
        return None if "unknown" in known else known

    def _try_remembered(
        self,
        idempotency_key: str,
        action: str,
        compute: Callable[[list[str | None]], tuple[WriteBatch, dict[str, JsonValue], JsonValue]],
        reads: Sequence[tuple[str, str]],
        known: list[Known],
    ) -> EffectRecord | bool:
        """Apply on the segment's reads: the record, or whether the attempt was counted (a
        guard failed, or the remembered reads could not decide: read them again)."""
        values = [remembered_field(key, name, registry=self._registry)[1] for key, name in reads]
        try:
            batch, payload, result = compute(values)
        except ConnectorError:
            return False  # decided again on fresh reads, which raise it again if it holds
        guarded = {(batch.keys[g[0] - 1], g[1]) for g in batch.guards if g[2] is None}
        unconfirmed = [r for how, r in zip(known, reads, strict=True) if how == "unlisted"]
        if any(read not in guarded for read in unconfirmed):
            return False  # absent only by the registry, and no guard to confirm it
        applied = self._apply(idempotency_key, action, batch, payload, result, count=True)
        return True if applied is None else applied

    def _apply(
        self,
        idempotency_key: str,
        action: str,
        batch: WriteBatch,
        payload: dict[str, JsonValue],
        result: JsonValue,
        *,
        count: bool,
    ) -> EffectRecord | None:
        """Run the effect's writes: its record (or the one applied before under the key), or
        None when a guard failed (nothing written)."""
        record = EffectRecord(
            system=self.system,
            idempotency_key=idempotency_key,
            action=action,
            payload=payload,
            result=result,
        )
        status, stored = self._run(batch, record, count=count)
        if status == 1:
            return record
        if status == 0:
            return self._same_action(EffectRecord.model_validate_json(stored), action)
        return None

    def _prior_and_reads(
        self, idempotency_key: str, reads: Sequence[tuple[str, str]], *, count: bool
    ) -> tuple[EffectRecord | None, list[str | None]]:
        """The effect already recorded under the key and the values of ``reads``, in one
        round trip that also counts the attempt when ``count``."""

        def fill(pipe: Pipeline) -> None:
            if count:
                pipe.incr(self._attempts)
            pipe.hget(self._effects, idempotency_key)
            _queue_reads(pipe, reads)

        replies = run_pipeline(self.client, fill)[1 if count else 0 :]
        raw = replies[0]
        prior = None if raw is None else EffectRecord.model_validate_json(raw)
        return prior, [None if raw is None else text(raw) for raw in replies[1:]]

    def effect(self, idempotency_key: str) -> EffectRecord | None:
        """The effect recorded under ``idempotency_key``, or None."""
        raw = self.hget(self._effects, idempotency_key)
        return None if raw is None else EffectRecord.model_validate_json(raw)

    def effects(self) -> list[EffectRecord]:
        """Every applied effect, one per idempotency key, in the order they were applied."""
        keys = [text(raw) for raw in self.client.lrange(self._order, 0, -1)]
        if not keys:
            return []
        raws: Sequence[bytes | str | None] = self.client.hmget(self._effects, keys)
        return [EffectRecord.model_validate_json(raw) for raw in raws if raw is not None]

    def attempts(self) -> int:
        """How many effectful calls came in, de-duplicated repeats included."""
        raw = self.client.get(self._attempts)
        return 0 if raw is None else int(raw)

    def _run(
        self, batch: WriteBatch, record: EffectRecord | None, *, count: bool
    ) -> tuple[int, str]:
        keys = list(batch.keys)
        spec: dict[str, Any] = {"guards": batch.guards, "ops": batch.ops}
        if count:
            keys.append(self._attempts)
            spec["attempts"] = len(keys)
        if record is not None:
            for name in (self._effects, self._order):
                if name not in keys:
                    keys.append(name)
            spec["effect"] = [
                keys.index(self._effects) + 1,
                keys.index(self._order) + 1,
                record.idempotency_key,
                record.model_dump_json(),
            ]
        keys, args = _with_registry(keys, [json.dumps(spec)])
        after = hashes_after_hset([[op[0], keys[op[1] - 1], *op[2:]] for op in batch.ops])
        forget_reads(keys)
        reply = call_script(self.client, _APPLY_ONCE, keys, args)
        status = int(reply[0])
        if status == 1:
            remember_hashes(after)  # this segment's own write, as the script applied it
        return status, text(reply[1])

    def _same_action(self, prior: EffectRecord, action: str) -> EffectRecord:
        if prior.action != action:
            raise ConnectorError(
                f"{self.system}: idempotency key {prior.idempotency_key!r} was already used for "
                f"{prior.action!r}, not {action!r}",
                hint="derive idempotency keys from the tool call, so each effect has its own key",
            )
        return prior

    def _check_key(self, idempotency_key: str) -> None:
        if not idempotency_key or not idempotency_key.strip():
            raise ConnectorError(
                f"{self.system}: an effectful call needs a non-empty idempotency_key",
                hint="pass the key the effect ledger formed for this tool call",
            )


def _pairs(flat: Sequence[bytes | str]) -> dict[str, str]:
    return {text(f): text(v) for f, v in zip(flat[::2], flat[1::2], strict=True)}


def _queue_reads(pipe: Pipeline, fields: Sequence[tuple[str, str]]) -> None:
    for key, field_name in fields:
        pipe.hget(key, field_name)
