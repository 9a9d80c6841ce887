"""One round trip for several commands, Lua scripts included.

redis-py sends ``SCRIPT EXISTS`` before a pipeline that holds a registered script: one more
round trip on paths a reviewer waits on. Here a script is queued as a plain ``EVALSHA``, and a
server that lost its scripts (restarted, ``SCRIPT FLUSH``) gets them loaded and the whole
pipeline sent again: everything queued through :func:`run` must be safe to send twice.

The commands are queued on a redis-py pipeline (its command methods and reply parsers), but
for a plain ``redis.Redis`` client they are sent on a connection this module keeps per client
(:class:`carebound._wire.SyncWire`): redis-py's per-pipeline machinery costs more
CPU than the round trip on the paths that run on every step. A broken connection is retried
once on a fresh one (as redis-py retries a pipeline).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from carebound._wire import SyncWire


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

_SOURCES: dict[str, Any] = {}
"""The source of every script queued so far, by sha1 (to reload after NOSCRIPT)."""

Pipeline = redis.client.Pipeline


def eval_queued(pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue ``script`` on ``pipe`` as an ``EVALSHA`` (sent by :func:`run`)."""
    eval_sha_queued(pipe, script.sha, script.script, keys, args)


def eval_sha_queued(
    pipe: Pipeline, sha: str, source: Any, keys: Sequence[str], args: Sequence[Any]
) -> None:
    """Queue the script ``source`` (whose sha1 is ``sha``) on ``pipe`` as an ``EVALSHA``."""
    _SOURCES.setdefault(sha, source)
    pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


_WIRE_ATTR = "_carebound_wire"
_WIRE_LOCK = threading.Lock()


def _wire(client: redis.Redis) -> SyncWire:
    """The client's wire, kept on the client itself so that the two go together."""
    wire: SyncWire | None = getattr(client, _WIRE_ATTR, None)
    if wire is None:
        with _WIRE_LOCK:
            wire = getattr(client, _WIRE_ATTR, None)
            if wire is None:
                wire = SyncWire(client)
                setattr(client, _WIRE_ATTR, wire)
    return wire


def _send(client: redis.Redis, pipe: Pipeline) -> list[Any]:
    wire = _wire(client)
    if not wire.usable:
        return pipe.execute(raise_on_error=False)
    return wire.replay(pipe.command_stack, client.response_callbacks)


def run(client: redis.Redis, fill: Callable[[Pipeline], object]) -> list[Any]:
    """Send the commands ``fill`` queues in one round trip and return their replies.

    Raises the first error a command replied with, as redis-py would.
    """
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        replies = _send(client, pipe)
        if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
            for source in list(_SOURCES.values()):
                client.script_load(source)
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


def call_script(
    client: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """Run ``script`` in one round trip (loading it if the server lost it); return its reply."""
    return run(client, lambda pipe: eval_queued(pipe, script, keys, args))[0]
