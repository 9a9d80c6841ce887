"""Scripts sent on a carebound wire (``carebound._wire``), the way the checkpoint savers send
them: one script, several scripts with idempotent companions in one trip, or one script per
call in batches. A server that lost a script (``NOSCRIPT``) gets it loaded and the trip sent
again, so everything sent here must be safe to send twice (every saver script is).

The sync and async functions are twins: what they share (the command, the reply checks) is
written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, ResponseError

from carebound.state.lua._loader import Script

if TYPE_CHECKING:
    from carebound._async_wire import AsyncWire
    from carebound._wire import Arg, SyncWire

ScriptCall = tuple[Script, Sequence[str], Sequence["Arg"]]
"""One script call: the script, its KEYS and its ARGV."""

BATCH = 100
"""Script calls per round trip in :func:`eval_batched` (admin operations over many threads)."""


def command(script: Script, keys: Sequence[str], args: Sequence[Arg]) -> list[Arg]:
    """``EVALSHA sha numkeys keys... args...`` as a command."""
    return ["EVALSHA", script.sha, len(keys), *keys, *args]


def _commands(calls: Sequence[ScriptCall], also: Sequence[Sequence[Arg]]) -> list[Sequence[Arg]]:
    return [*(command(*call) for call in calls), *also]


def _lost_a_script(replies: Sequence[Any]) -> bool:
    return any(isinstance(reply, NoScriptError) for reply in replies)


def _checked(replies: list[Any]) -> list[Any]:
    """``replies``, raising the first error one of them is."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


def _batches(
    script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Arg]]]
) -> list[list[Sequence[Arg]]]:
    return [
        [command(script, keys, args) for keys, args in calls[start : start + BATCH]]
        for start in range(0, len(calls), BATCH)
    ]


def eval_script(wire: SyncWire, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """Run ``script`` in one round trip (two more when Redis must load it first)."""
    try:
        return wire.evalsha(script.sha, keys, args)
    except NoScriptError:
        wire.lost_scripts()
        wire.load_script(script.source)
        return wire.evalsha(script.sha, keys, args)


def eval_many(
    wire: SyncWire, calls: Sequence[ScriptCall], also: Sequence[Sequence[Arg]] = ()
) -> list[Any]:
    """The script ``calls``, in order, then the idempotent commands ``also``, in one
    non-transactional round trip; their replies (the first error one of them is raised)."""
    commands = _commands(calls, also)
    replies = wire.call_many(commands)
    if _lost_a_script(replies):
        wire.lost_scripts()
        for script in {call[0] for call in calls}:
            wire.load_script(script.source)
        replies = wire.call_many(commands)
    return _checked(replies)


def eval_batched(
    wire: SyncWire, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Arg]]]
) -> None:
    """Run ``script`` once per (keys, args), pipelined in batches of :data:`BATCH`."""
    wire.load_script(script.source)
    for batch in _batches(script, calls):
        _checked(wire.call_many(batch))


async def aeval_script(
    wire: AsyncWire, script: Script, keys: Sequence[str], args: Sequence[Arg]
) -> Any:
    """The asyncio twin of :func:`eval_script`."""
    try:
        return await wire.evalsha(script.sha, keys, args)
    except NoScriptError:
        await wire.load_script(script.source)
        return await wire.evalsha(script.sha, keys, args)


async def aeval_many(
    wire: AsyncWire, calls: Sequence[ScriptCall], also: Sequence[Sequence[Arg]] = ()
) -> list[Any]:
    """The asyncio twin of :func:`eval_many`."""
    commands = _commands(calls, also)
    replies = await wire.call_many(commands)
    if _lost_a_script(replies):
        for script in {call[0] for call in calls}:
            await wire.load_script(script.source)
        replies = await wire.call_many(commands)
    return _checked(replies)


async def aeval_batched(
    wire: AsyncWire, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Arg]]]
) -> None:
    """The asyncio twin of :func:`eval_batched`."""
    await wire.load_script(script.source)
    for batch in _batches(script, calls):
        _checked(await wire.call_many(batch))
