"""One round trip for several commands, Lua scripts included.

redis-py sends ``SCRIPT EXISTS`` before a pipeline that holds a registered script: one more
round trip on paths a reviewer waits on. Here a script is queued as a plain ``EVALSHA``, and a
server that lost its scripts (restarted, ``SCRIPT FLUSH``) gets them loaded and the whole
pipeline sent again: everything queued through :func:`run` must be safe to send twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

_SOURCES: dict[str, Any] = {}
"""The source of every script queued so far, by sha1 (to reload after NOSCRIPT)."""

Pipeline = redis.client.Pipeline


def eval_queued(pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue ``script`` on ``pipe`` as an ``EVALSHA`` (sent by :func:`run`)."""
    _SOURCES.setdefault(script.sha, script.script)
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


def run(client: redis.Redis, fill: Callable[[Pipeline], object]) -> list[Any]:
    """Send the commands ``fill`` queues in one round trip and return their replies.

    Raises the first error a command replied with, as redis-py would.
    """
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
            for source in list(_SOURCES.values()):
                client.script_load(source)
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies
    raise AssertionError("unreachable: the second attempt returns or raises")
