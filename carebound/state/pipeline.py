"""One round trip for several commands, Lua scripts included.

redis-py sends ``SCRIPT EXISTS`` before a pipeline that holds a registered script: one more
round trip on paths a reviewer waits on. Here a script (:class:`carebound.state.lua.Script`,
queued with its ``queue`` method) is a plain ``EVALSHA``, and a
server that lost its scripts (restarted, ``SCRIPT FLUSH``) gets them loaded and the whole
pipeline sent again: everything queued through :func:`run` must be safe to send twice (a
script is loaded before its first use in a process, so only a server that lost every script
at once sends a pipeline back).

The commands are queued on a redis-py pipeline (its command methods and reply parsers), but
for a plain ``redis.Redis`` client they are sent on a connection this module keeps per client
(:class:`carebound._wire.SyncWire`): redis-py's per-pipeline machinery costs more
CPU than the round trip on the paths that run on every step. A broken connection is retried
once on a fresh one (as redis-py retries a pipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, FieldT

from carebound._wire import SyncWire, ride_ahead, ride_joined, shared_wire
from carebound.state.lua import Script, queued_shas, queued_source, script, shas_queued_on
from carebound.state.lua._on_wire import command


@dataclass(frozen=True)
class Guard:
    """A condition a queued script checks before it writes: these fields of the hash at
    ``key`` (in the same hash slot as the script's other keys) hold these values."""

    key: str
    fields: Mapping[str, str]

    def args(self) -> list[str]:
        """The field/value pairs, flat, as the scripts take them in ARGV."""
        return [item for pair in self.fields.items() for item in pair]


_T = TypeVar("_T")

_GUARDED_HSET = script("guarded_hset")

Pipeline = redis.client.Pipeline


def guarded_hset_queued(
    pipe: Pipeline,
    key: str,
    mapping: Mapping[FieldT, EncodableT] | Mapping[str, str],
    guard: Guard,
    *,
    delete: Sequence[str] = (),
) -> None:
    """Queue ``HSET key mapping`` (after ``HDEL key *delete``) to run only while ``guard``
    holds (its reply: 1 written, 0 refused); ``key`` and the guard's hash must share a hash
    slot."""
    args = [len(guard.fields), *guard.args(), len(delete), *delete]
    args += [x for pair in mapping.items() for x in pair]
    _GUARDED_HSET.queue(pipe, [key, guard.key], args)


def _wire(client: redis.Redis) -> SyncWire:
    return shared_wire(client)


def _send(client: redis.Redis, wire: SyncWire, pipe: Pipeline) -> list[Any]:
    if not wire.usable:
        return pipe.execute(raise_on_error=False)
    return wire.replay(pipe.command_stack, client.response_callbacks)


def _load_new_scripts(client: redis.Redis, wire: SyncWire, pipe: Pipeline) -> None:
    """``SCRIPT LOAD`` the scripts queued on ``pipe`` that this process has not loaded through
    ``client`` yet (once each). Without it, a server that has some of a pipeline's scripts
    but not others (a new carebound version's changed script, say) would run the commands
    before the missing one, and the re-sent pipeline would run them again: a decide step
    would then find its own decision and report it as someone else's."""
    for sha in shas_queued_on(pipe) - wire.loaded:
        client.script_load(queued_source(sha))  # on a cluster: on every primary
        wire.loaded.add(sha)


def run(client: redis.Redis, fill: Callable[[Pipeline], object]) -> list[Any]:
    """Send the commands ``fill`` queues in one round trip and return their replies.

    Raises the first error a command replied with, as redis-py would.
    """
    wire = _wire(client)
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        _load_new_scripts(client, wire, pipe)
        replies = _send(client, wire, pipe)
        if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
            wire.lost_scripts()
            for sha in queued_shas():
                client.script_load(queued_source(sha))
                wire.loaded.add(sha)
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies
    raise AssertionError("unreachable: the second attempt returns or raises")


def run_parsed(client: redis.Redis, queue: Callable[[Pipeline], Callable[[list[Any]], _T]]) -> _T:
    """Send what ``queue`` queues in one round trip; ``queue`` returns the parser of the
    replies (it is called again, with a fresh pipeline, if the pipeline is re-sent)."""
    parse: Callable[[list[Any]], _T] | None = None

    def fill(pipe: Pipeline) -> None:
        nonlocal parse
        parse = queue(pipe)

    replies = run(client, fill)
    assert parse is not None
    return parse(replies)


def ride_script(
    client: redis.Redis,
    lua: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    landed: Callable[[Any], None],
) -> bool:
    """Have ``lua`` ride ahead of the next round trip on ``client`` (inside
    ``carebound._wire.riding``: a graph segment); ``landed`` is then called with the script's
    reply, or with None when the server did not have the script (nothing ran); any other error
    reply is raised. False, and nothing queued, outside a riding block: run it yourself."""

    _ready_to_ride(client, lua)
    return ride_ahead(client, command(lua, keys, args), _on_script_reply(client, landed))


def _on_script_reply(client: redis.Redis, landed: Callable[[Any], None]) -> Callable[[Any], None]:
    """A riding script's reply handler: ``landed`` gets the reply, or None when the server
    did not have the script (nothing ran; every script is then loaded again before its next
    ride, :func:`_ready_to_ride`); any other error reply is raised."""

    def on_reply(reply: Any) -> None:
        if isinstance(reply, NoScriptError):
            _wire(client).lost_scripts()
            landed(None)
        elif isinstance(reply, Exception):
            raise reply
        else:
            landed(reply)

    return on_reply


def _ready_to_ride(client: redis.Redis, lua: Script) -> None:
    """Load ``lua`` before its first ride through ``client`` (once per process, and again
    after the server lost scripts): a rider the server lacks runs nothing, and run after the
    round trip it rode ahead of (a settle, which packs the run's checkpoint and releases its
    lease), it would come after what it must precede. ``tests/test_script_loss.py``."""
    wire = _wire(client)
    if lua.sha not in wire.loaded:
        client.script_load(lua.source)
        wire.loaded.add(lua.sha)


def ride_script_joined(
    client: redis.Redis,
    lua: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    *,
    part: Sequence[Any],
    landed: Callable[[Any], None],
) -> bool:
    """Like :func:`ride_script`, for a script that takes its ARGV as ``args`` then any number
    of parts and replies with a list, one reply per part (``audit_record_many``): consecutive
    riders of ``lua`` on the same ``keys`` and ``args`` become one call
    (:func:`carebound._wire.ride_joined`), and ``landed`` gets this part's reply, or None when
    the server did not have the script (nothing ran: it is loaded again before the next ride)."""

    def build(parts: list[Sequence[Any]]) -> list[Any]:
        return command(lua, keys, [*args, *(arg for one in parts for arg in one)])

    _ready_to_ride(client, lua)
    key = (lua.sha, tuple(keys), tuple(args))
    return ride_joined(client, key, build, part, _on_script_reply(client, landed))


def call_script(client: redis.Redis, lua: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run ``lua`` in one round trip (loading it if the server lost it); return its reply."""
    return run(client, lambda pipe: lua.queue(pipe, keys, args))[0]
