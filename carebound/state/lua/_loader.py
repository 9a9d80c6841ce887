"""The one loader of carebound's Lua scripts.

Every script is a ``.lua`` file next to this module (``carebound/lua/``), opening with a
comment that names its KEYS, ARGV and reply. A file whose name starts with ``_`` is a helper
(one ``local function`` of the same name): a script gets the helpers it calls, and theirs,
placed before its own text. Each script is read and its SHA1 computed once per process.

A script runs three ways, all here:

* :meth:`Script.__call__` / :meth:`Script.acall`: one ``EVALSHA``; a server that lost the
  script (``NOSCRIPT``) gets ``SCRIPT LOAD`` and the call is sent again;
* :meth:`Script.queue`: an ``EVALSHA`` queued on a redis-py pipeline, sent (and reloaded
  after ``NOSCRIPT``) by :func:`carebound.state.pipeline.run`, which finds the source through
  :func:`queued_source`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from carebound._wire import shared_wire

_HELPER_PREFIX = "_"

SyncClient = redis.Redis | RedisCluster
AsyncClient = aioredis.Redis | AsyncRedisCluster

_QUEUED: dict[str, str] = {}
"""The source of every script queued on a pipeline so far, by sha1 (to reload after NOSCRIPT)."""

_ON_PIPELINE: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""The sha1s queued on each live pipeline other than a plain redis-py one (a cluster pipeline
keeps its commands where redis-py's ``command_stack`` does not show them); a plain pipeline's
are read from its ``command_stack`` (registering them here cost more than queueing them)."""
_PLAIN_PIPELINE = redis.client.Pipeline
_ON_PIPELINE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Script:
    """A Lua script (helpers included) and its SHA1, computed once so every call can go
    straight to ``EVALSHA``."""

    name: str
    """The file name without ``.lua``."""
    source: str
    """The text sent by ``SCRIPT LOAD``: the helpers it calls, then the file."""
    sha: str
    """SHA1 of ``source`` (hex), as Redis names the script."""

    def __call__(self, client: SyncClient, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run the script in one round trip (two more if the server lost it)."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            shared_wire(client).lost_scripts()  # the others are loaded again before their use
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def acall(self, client: AsyncClient, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The ``redis.asyncio`` counterpart of calling the script."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: redis.client.Pipeline, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Queue the script on ``pipe`` as a plain ``EVALSHA`` (send it with
        :func:`carebound.state.pipeline.run`, which loads it first if needed)."""
        if self.sha not in _QUEUED:
            _QUEUED[self.sha] = self.source
        if type(pipe) is not _PLAIN_PIPELINE:  # its commands are not in ``command_stack``
            with _ON_PIPELINE_LOCK:
                _ON_PIPELINE.setdefault(pipe, set()).add(self.sha)
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    @staticmethod
    def from_source(name: str, source: str) -> Script:
        """A script from text rather than a file (tests use it for throwaway scripts)."""
        return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def queued_source(sha: str) -> str:
    """The source of a script queued on a pipeline in this process (KeyError if none)."""
    return _QUEUED[sha]


def shas_queued_on(pipe: Any) -> set[str]:
    """The sha1s of the scripts queued on ``pipe`` (a plain or a cluster pipeline)."""
    if type(pipe) is _PLAIN_PIPELINE:
        return {
            args[1]
            for args, _ in pipe.command_stack
            if args[0] == "EVALSHA" and len(args) > 1 and args[1] in _QUEUED
        }
    with _ON_PIPELINE_LOCK:
        return set(_ON_PIPELINE.get(pipe, ()))


def queued_shas() -> list[str]:
    """The sha1s of every script queued on a pipeline in this process."""
    return list(_QUEUED)


def _files() -> dict[str, str]:
    folder = resources.files("carebound.state.lua")
    return {
        entry.name.removesuffix(".lua"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }


@cache
def _texts() -> dict[str, str]:
    return _files()


def script_names() -> list[str]:
    """The scripts (not helpers) in the folder, sorted."""
    return sorted(n for n in _texts() if not n.startswith(_HELPER_PREFIX))


def helper_names() -> list[str]:
    """The helper functions in the folder (file names without the leading ``_``), sorted."""
    return sorted(n[1:] for n in _texts() if n.startswith(_HELPER_PREFIX))


def _calls(text: str) -> list[str]:
    """The helpers ``text`` calls, in the order they first appear."""
    found = []
    for helper in helper_names():
        match = re.search(rf"\b{helper}\(", text)
        if match:
            found.append((match.start(), helper))
    return [helper for _, helper in sorted(found)]


def _with_helpers(body: str) -> str:
    """``body`` preceded by the helpers it calls, each after the helpers it calls itself
    (a Lua ``local function`` must be defined before the code that calls it)."""
    texts = _texts()
    ordered: list[str] = []

    def need(text: str, own: str | None) -> None:
        for helper in _calls(text):
            if helper != own and helper not in ordered:
                need(texts[_HELPER_PREFIX + helper], helper)
                ordered.append(helper)

    need(body, None)
    return "".join(texts[_HELPER_PREFIX + helper] for helper in ordered) + body


@cache
def script(name: str) -> Script:
    """The script ``lua/<name>.lua`` with its helpers (read once per process).

    Raises:
        KeyError: there is no such script.
    """
    if name.startswith(_HELPER_PREFIX) or name not in _texts():
        raise KeyError(f"no Lua script {name!r} in carebound/lua/")
    return Script.from_source(name, _with_helpers(_texts()[name]))
