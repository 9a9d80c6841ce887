"""Sending commands with as little client overhead as possible.

A checkpoint write is one EVALSHA; at ``durability="sync"`` a graph waits for it on every
step, so the per-call cost of the client matters as much as the round trip. For a plain
``redis.Redis`` / ``redis.asyncio.Redis`` client the savers (and :mod:`carebound.state.pipeline`)
therefore keep a few connections borrowed from the client's own pool (same host, auth, TLS
and timeouts) and speak RESP on them directly: one ``sendall`` and one parsed reply per call.
Any other client (e.g. ``RedisCluster``) goes through its ``execute_command``/pipeline, which
routes by key.

Everything sent this way is idempotent, so a call whose connection broke is retried once on
a fresh connection.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

import redis
import redis.asyncio as aioredis
from hiredis import pack_command
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.cluster import RedisCluster
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int | float
SyncClient = redis.Redis | RedisCluster
AsyncClient = aioredis.Redis | AsyncRedisCluster
# redis-py's connection classes are not annotated: connections are handled as Any here.
Connection = Any
_RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)


_HEAD_CACHE_MAX = 20_000


def _bulks(args: Sequence[Arg]) -> bytes:
    """``args`` as consecutive RESP bulk strings (a plain loop: this is on every call)."""
    out = []
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()  # a float, written as redis-py writes it
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def _c_pack(args: tuple[Arg, ...]) -> bytes:
    # hiredis's stub types the argument as a one-item tuple; it takes any number of items
    packed: bytes = pack_command(args)  # type: ignore[arg-type]
    return packed


def pack(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings, packed by hiredis in C (the Python
    loop took a fair part of a checkpoint write's CPU); an argument hiredis refuses (a bool)
    goes through the loop, which writes it as redis-py does."""
    try:
        return _c_pack(tuple(args))
    except TypeError:
        return b"*%d\r\n" % len(args) + _bulks(args)


def _decodes(client: SyncClient | AsyncClient) -> bool:
    kwargs: dict[str, Any] = client.get_connection_kwargs()
    return bool(kwargs.get("decode_responses"))


def _decoding_error(user: str) -> ValueError:
    return ValueError(
        f"{user} reads binary values: create the cluster client with decode_responses=False"
    )


def binary_client(client: SyncClient, *, user: str = "the saver") -> tuple[SyncClient, bool]:
    """``client``, or (when it decodes replies to str) a sibling on the same server that
    does not; the bool says whether the saver owns (and must close) the returned client."""
    if not _decodes(client):
        return client, False
    if not isinstance(client, redis.Redis):
        raise _decoding_error(user)
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    sibling = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    return redis.Redis.from_pool(sibling), True  # its close() disconnects the sibling pool


Queued = tuple[Sequence[Any], dict[str, Any]]
"""A command as a redis-py pipeline queues it: its arguments and its parse options."""


class _Parse:
    """Reads the replies to queued commands the way ``redis.Redis.parse_response`` does."""

    def __init__(self, queued: Sequence[Queued], callbacks: Mapping[str, Any]) -> None:
        self._queued = queued
        self._callbacks = callbacks

    def __call__(self, conn: Connection) -> list[Any]:
        replies: list[Any] = []
        for args, options in self._queued:
            try:
                reply = conn.read_response(disable_decoding=NEVER_DECODE in options)
            except ResponseError as exc:
                replies.append(options.get(EMPTY_RESPONSE, exc))
                continue
            callback = self._callbacks.get(args[0])
            if callback is not None:
                extra = {
                    k: v
                    for k, v in options.items()
                    if k not in (NEVER_DECODE, EMPTY_RESPONSE, "keys")
                }
                reply = callback(reply, **extra)
            replies.append(reply)
        return replies


class _Heads:
    """RESP encodings of ``EVALSHA sha numkeys keys...``, cached for the Python packer (an
    argument hiredis refuses): they repeat on every call for one thread and namespace."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[str, ...]], bytes] = {}

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[Arg]) -> bytes:
        try:
            return _c_pack(("EVALSHA", sha, len(keys), *keys, *args))
        except TypeError:
            pass
        index = (sha, tuple(keys))
        head = self._cache.get(index)
        if head is None:
            if len(self._cache) > _HEAD_CACHE_MAX:
                self._cache.clear()
            head = self._cache[index] = _bulks(["EVALSHA", sha, len(keys), *keys])
        return b"*%d\r\n" % (3 + len(keys) + len(args)) + head + _bulks(args)


class _Rider(NamedTuple):
    wire: SyncWire
    packed: bytes
    on_reply: Callable[[Any], None]


class _Joined:
    """Riders joined into one command (see :func:`ride_joined`): the command is built from
    their parts when it is sent, and its reply (a list, one item per part) split among them."""

    __slots__ = ("_build", "_callbacks", "_parts", "key", "wire")

    def __init__(
        self, wire: SyncWire, key: Hashable, build: Callable[[list[Any]], Sequence[Arg]]
    ) -> None:
        self.wire = wire
        self.key = key
        self._build = build
        self._parts: list[Any] = []
        self._callbacks: list[Callable[[Any], None]] = []

    def add(self, part: Any, on_reply: Callable[[Any], None]) -> None:
        self._parts.append(part)
        self._callbacks.append(on_reply)

    @property
    def packed(self) -> bytes:
        return pack(self._build(self._parts))

    def on_reply(self, reply: Any) -> None:
        if isinstance(reply, Exception) or not isinstance(reply, list):
            replies = [reply] * len(self._callbacks)  # an error reply: every part hears it
        else:
            replies = reply
        failed: Exception | None = None
        for callback, part_reply in zip(self._callbacks, replies, strict=True):
            try:
                callback(part_reply)
            except Exception as exc:  # every part hears its reply; the first failure is raised
                failed = failed or exc
        if failed is not None:
            raise failed


_RIDERS: ContextVar[list[_Rider | _Joined] | None] = ContextVar("carebound_riders", default=None)


@contextmanager
def riding() -> Iterator[None]:
    """Within this block, on this thread (and the graph tasks it runs inline), commands handed
    to :func:`ride_ahead` are sent ahead of the next round trip on their wire, in the order given,
    and their replies handed to their callbacks once that round trip is back; what is still
    waiting when the block ends is sent then (one round trip per wire). A block inside another
    joins it: what rides is sent by the next round trip, or when the outer block ends."""
    if _RIDERS.get() is not None:
        yield
        return
    riders: list[_Rider | _Joined] = []
    token = _RIDERS.set(riders)
    try:
        yield
    finally:
        try:
            while riders:
                riders[0].wire.call_many([])  # takes every rider of that wire
        finally:
            _RIDERS.reset(token)


def ride_ahead(client: SyncClient, args: Sequence[Arg], on_reply: Callable[[Any], None]) -> bool:
    """Have ``args`` ride ahead of the next round trip on ``client``'s wire (see
    :func:`riding`); False, and nothing queued, outside a riding block or on a client whose
    wire does not talk to one server directly: then send it yourself."""
    riders = _RIDERS.get()
    wire = shared_wire(client)
    if riders is None or not wire.usable:
        return False
    riders.append(_Rider(wire, pack(args), on_reply))
    return True


def ride_joined(
    client: SyncClient,
    key: Hashable,
    build: Callable[[list[Any]], Sequence[Arg]],
    part: Any,
    on_reply: Callable[[Any], None],
) -> bool:
    """Like :func:`ride_ahead`, for one part of a command that takes several: when the rider
    queued last on this thread is such a command with the same ``key`` (on the same wire),
    ``part`` joins it, else a new one is queued. ``build`` makes the command from its parts
    when it is sent; its reply must be a list with one item per part, each handed to that
    part's ``on_reply`` (an error reply is handed to every part). Only the last rider is
    joined, so everything still runs in the order it was handed over."""
    riders = _RIDERS.get()
    wire = shared_wire(client)
    if riders is None or not wire.usable:
        return False
    last = riders[-1] if riders else None
    if not (isinstance(last, _Joined) and last.wire is wire and last.key == key):
        last = _Joined(wire, key, build)
        riders.append(last)
    last.add(part, on_reply)
    return True


def raise_error(reply: Any) -> None:
    """A :func:`ride_ahead` callback for a command whose reply is not needed: an error reply
    is raised."""
    if isinstance(reply, Exception):
        raise reply


def _take_riders(wire: SyncWire) -> list[_Rider | _Joined]:
    riders = _RIDERS.get()
    if not riders:
        return []
    mine = [r for r in riders if r.wire is wire]
    if mine:
        riders[:] = [r for r in riders if r.wire is not wire]
    return mine


class SyncWire:
    """Runs commands for a blocking client; thread-safe (one connection per call)."""

    def __init__(self, client: SyncClient) -> None:
        # weak: the wire is kept per client in _WIRES and must not keep its client alive
        self._client_ref = weakref.ref(client)
        pool = getattr(client, "connection_pool", None)
        self._pool: ConnectionPool | None = pool if isinstance(pool, ConnectionPool) else None
        self._idle: list[Connection] = []
        self._pid = os.getpid()
        self._heads = _Heads()
        self.loaded: set[str] = set()
        """sha1s of the scripts :mod:`carebound.state.pipeline` loaded through this client
        (loaded again before their next use once the server is found to have lost one)."""

    @property
    def _client(self) -> SyncClient:
        client = self._client_ref()
        if client is None:
            raise RuntimeError("the Redis client of this wire was garbage-collected")
        return client

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """``EVALSHA sha len(keys) *keys *args``; a ResponseError (NOSCRIPT too) is raised."""
        if self._pool is None:
            return self._client.evalsha(sha, len(keys), *keys, *args)
        reply = self._exchange([self._heads.evalsha(sha, keys, args)])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def call(self, args: Sequence[Arg]) -> Any:
        """Send one command and return its reply (a ResponseError is raised)."""
        if self._pool is None:
            return self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        reply = self._exchange([pack(args)])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def lost_scripts(self) -> None:
        """The server answered NOSCRIPT (restarted, flushed, or never sent that script): it
        may lack any other, so each is loaded again before its next use through a pipeline
        or a ride (a riding script the server lacks runs nothing, and running it after the
        round trip it rode ahead of would change their order)."""
        self.loaded.clear()

    def load_script(self, source: str) -> None:
        """SCRIPT LOAD (on every primary, for a cluster client)."""
        if self._pool is None:
            self._client.script_load(source)
        else:
            self.call(["SCRIPT", "LOAD", source])

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send several commands in one round trip; error replies are returned, not raised."""
        if self._pool is None:
            pipe = self._client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            return pipe.execute(raise_on_error=False)
        return self._exchange([pack(args) for args in commands])

    def replay(self, queued: Sequence[Queued], callbacks: Mapping[str, Any]) -> list[Any]:
        """Send the commands queued on a redis-py pipeline in one round trip; each reply is
        parsed as redis-py parses it (``callbacks``: the client's response callbacks) and
        error replies are returned, not raised. Needs a pool (``usable`` is True)."""
        return self._exchange([pack(args) for args, _ in queued], _Parse(queued, callbacks))

    @property
    def usable(self) -> bool:
        """Whether this wire talks to one server directly (False: a cluster client)."""
        return self._pool is not None

    def _exchange(self, packed: list[bytes], parse: _Parse | None = None) -> list[Any]:
        assert self._pool is not None
        if self._pid != os.getpid():
            # forked: the borrowed sockets belong to the parent (the pool resets itself)
            self._idle = []
            self._pid = os.getpid()
        riders = _take_riders(self)
        if riders:
            packed = [*(r.packed for r in riders), *packed]
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._pool.get_connection()
        try:
            try:
                replies = self._send(conn, packed, parse, len(riders))
            except _RETRYABLE:
                conn.disconnect()
                replies = self._send(conn, packed, parse, len(riders))
        except BaseException:
            conn.disconnect()
            self._pool.release(conn)
            raise
        self._idle.append(conn)
        failed: Exception | None = None
        for rider, reply in zip(riders, replies, strict=False):
            try:
                rider.on_reply(reply)
            except Exception as exc:  # every rider hears its reply; the first failure is raised
                failed = failed or exc
        if failed is not None:
            raise failed
        return replies[len(riders) :]

    @staticmethod
    def _send(
        conn: Connection, packed: list[bytes], parse: _Parse | None, riders: int = 0
    ) -> list[Any]:
        # one write for all: redis-py writes a list item by item, and each write can wake
        # the server for a partial batch (more round trips on a busy machine)
        conn.send_packed_command([b"".join(packed)], check_health=False)
        replies: list[Any] = []
        for _ in packed[: riders if parse is not None else len(packed)]:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        if parse is not None:
            replies.extend(parse(conn))
        return replies

    def close(self) -> None:
        """Give the borrowed connections back to the client's pool."""
        if self._pool is not None:
            while self._idle:
                self._pool.release(self._idle.pop())


_WIRES: weakref.WeakKeyDictionary[SyncClient, SyncWire] = weakref.WeakKeyDictionary()
"""The one wire of each client, kept here (never on the caller's client object) and dropped
with the client."""
_WIRES_LOCK = threading.Lock()


def shared_wire(client: SyncClient) -> SyncWire:
    """The one wire of ``client``.

    Everything that talks to one client (pipelines, every Runner's checkpoint saver) shares
    it, so the connections borrowed from the client's pool are bounded by how many calls
    run at once, never by how many Runners were made on the client.
    """
    wire = _WIRES.get(client)
    if wire is None:
        with _WIRES_LOCK:
            wire = _WIRES.get(client)
            if wire is None:
                wire = _WIRES[client] = SyncWire(client)
    return wire
