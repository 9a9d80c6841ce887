"""Filling a key space with copies of parked runs, fast (pipelines), for the large inbox sizes.

Parking a real run costs a ``Runner.start`` (tens of milliseconds); a hundred thousand of them
would take the better part of an hour on two cores. So the large sizes park a few thousand
real runs and fill the rest with copies: every key of a real run (record, case, events,
checkpoints, approval, ledger, audit chain, simulated world: whatever a SCAN of its hash tag
finds) is copied under a new run id of the same length, with the id replaced in key names and
values, plus the run's entries in the indexes that span runs (the run registry, the
checkpointer's thread registry, the audit anchors and the inbox). The global audit index is
not copied (the inbox never reads it).

A copy's hold sorts after every real hold (its deadline moved ``DEADLINE_SHIFT_MS`` later), so
the decides of the benchmark, which take the most urgent hold, resume real runs only: a copy
is never resumed (values the checkpointer compressed still name the original run inside).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis

from carebound.state.keys import global_key, inbox_key, run_key

DEADLINE_SHIFT_MS = 30 * 24 * 3600 * 1000
"""How much later a copy's hold is due than its original's."""

_PIPE_COMMANDS = 2000


@dataclass
class _Key:
    suffix: str
    kind: str
    value: Any


@dataclass
class Template:
    """One real run as read once: its keys and its entries in the cross-run indexes."""

    run_id: str
    keys: list[_Key]
    created_score: float
    thread_score: float | None
    anchor: bytes | None
    holds: list[tuple[str, str, int]]
    """(approval id, role, deadline ms) of its pending holds."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _read_value(client: redis.Redis, name: str) -> tuple[str, Any]:
    kind = _text(client.type(name))
    if kind == "string":
        return kind, client.get(name)
    if kind == "hash":
        return kind, client.hgetall(name)
    if kind == "zset":
        return kind, client.zrange(name, 0, -1, withscores=True)
    if kind == "set":
        return kind, client.smembers(name)
    if kind == "list":
        return kind, client.lrange(name, 0, -1)
    if kind == "stream":
        return kind, client.xrange(name)
    raise RuntimeError(f"cannot copy {name}: a {kind}")


def read_templates(client: redis.Redis, prefix: str, run_ids: list[str]) -> list[Template]:
    """Every key of each of ``run_ids`` (one SCAN of the prefix's run keys) with its value,
    and each run's entries in the indexes that span runs."""
    head = prefix + ":{"
    found: dict[str, list[_Key]] = {run_id: [] for run_id in run_ids}
    holds: dict[str, list[tuple[str, str, int]]] = {run_id: [] for run_id in run_ids}
    for raw in client.scan_iter(match=head + "*", count=5000):
        name = _text(raw)
        run_id = name[len(head) : name.find("}", len(head))]
        if run_id not in found:
            continue
        suffix = name[len(run_key(prefix, run_id, "")) :]
        kind, value = _read_value(client, name)
        found[run_id].append(_Key(suffix, kind, value))
        if kind == "hash" and suffix.startswith("approval:") and value.get(b"status") == b"pending":
            deadline = int(value[b"deadline_ms"])
            holds[run_id].append((suffix[len("approval:") :], _text(value[b"role"]), deadline))
    templates = []
    for run_id in run_ids:
        created = client.zscore(global_key(prefix, "runs"), run_id)
        if created is None or not found[run_id]:
            raise RuntimeError(f"run {run_id} is not stored")
        templates.append(
            Template(
                run_id=run_id,
                keys=found[run_id],
                created_score=created,
                thread_score=client.zscore(global_key(prefix, "cp", "threads"), run_id),
                anchor=client.hget(global_key(prefix, "audit", "anchors"), run_id),
                holds=holds[run_id],
            )
        )
    return templates


def _swap(value: Any, old: bytes, new: bytes) -> Any:
    if isinstance(value, bytes):
        return value.replace(old, new)
    return value


def _queue_copy(pipe: Any, prefix: str, template: Template, clone: str) -> None:
    old, new = template.run_id.encode(), clone.encode()
    base = run_key(prefix, clone, "")
    for key in template.keys:
        name = base + key.suffix.replace(template.run_id, clone)
        value = key.value
        if key.kind == "string":
            pipe.set(name, _swap(value, old, new))
        elif key.kind == "hash":
            mapping = {_swap(k, old, new): _swap(v, old, new) for k, v in value.items()}
            if key.suffix.startswith("approval:") and b"deadline_ms" in mapping:
                mapping[b"deadline_ms"] = int(mapping[b"deadline_ms"]) + DEADLINE_SHIFT_MS
            pipe.hset(name, mapping=mapping)
        elif key.kind == "zset":
            pipe.zadd(name, {_swap(m, old, new): s for m, s in value})
        elif key.kind == "set":
            pipe.sadd(name, *(_swap(m, old, new) for m in value))
        elif key.kind == "list":
            pipe.rpush(name, *(_swap(m, old, new) for m in value))
        else:  # stream: the same entry ids, in order
            for entry_id, fields in value:
                swapped = {k: _swap(v, old, new) for k, v in fields.items()}
                pipe.xadd(name, swapped, id=entry_id)
    pipe.zadd(global_key(prefix, "runs"), {clone: template.created_score})
    if template.thread_score is not None:
        pipe.zadd(global_key(prefix, "cp", "threads"), {clone: template.thread_score})
    if template.anchor is not None:
        pipe.hset(global_key(prefix, "audit", "anchors"), clone, template.anchor)
    for approval_id, role, deadline_ms in template.holds:
        copy_id = approval_id.replace(template.run_id, clone)
        score = deadline_ms + DEADLINE_SHIFT_MS
        pipe.zadd(inbox_key(prefix, "all"), {copy_id: score})
        pipe.zadd(inbox_key(prefix, "role", role), {copy_id: score})


def clone_runs(client: redis.Redis, prefix: str, templates: list[Template], count: int) -> int:
    """Add ``count`` copies of the templates (round robin) under new run ids; returns how many
    commands were sent."""
    sent = 0
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        template = templates[n % len(templates)]
        clone = "r" + uuid.uuid4().hex[: len(template.run_id) - 1]
        _queue_copy(pipe, prefix, template, clone)
        if len(pipe) >= _PIPE_COMMANDS:
            sent += len(pipe)
            pipe.execute()
    sent += len(pipe)
    pipe.execute()
    return sent
