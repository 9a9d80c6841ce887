"""The synchronous saver's script calls on its wire: one script (loading it when Redis has
not seen it), one script with idempotent companions in one trip, a script per call in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from carebound._wire import Arg, SyncWire
from carebound.state.lua import Script

_BATCH = 100


def eval_script(wire: SyncWire, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """Run ``script`` in one round trip (two when Redis must load it first)."""
    try:
        return wire.evalsha(script.sha, keys, args)
    except NoScriptError:
        wire.load_script(script.source)
        return wire.evalsha(script.sha, keys, args)


def eval_with(
    wire: SyncWire,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Arg],
    also: Sequence[Sequence[Arg]],
) -> Any:
    """``script`` and the idempotent commands ``also`` in one non-transactional trip."""
    commands: list[Sequence[Arg]] = [
        ["EVALSHA", script.sha, len(keys), *keys, *args],
        *also,
    ]
    replies = wire.call_many(commands)
    if isinstance(replies[0], NoScriptError):
        wire.load_script(script.source)
        replies = wire.call_many(commands)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies[0]


def eval_batched(
    wire: SyncWire, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Arg]]]
) -> None:
    """Run ``script`` once per (keys, args), pipelined in batches (admin operations)."""
    wire.load_script(script.source)
    for start in range(0, len(calls), _BATCH):
        commands: list[Sequence[Arg]] = []
        for keys, args in calls[start : start + _BATCH]:
            commands.append(["EVALSHA", script.sha, len(keys), *keys, *args])
        for reply in wire.call_many(commands):
            if isinstance(reply, ResponseError):
                raise reply
