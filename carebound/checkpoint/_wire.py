"""Sending script calls with as little client overhead as possible.

A checkpoint write is one EVALSHA; at ``durability="sync"`` a graph waits for it on every
step, so the per-call cost of the client matters as much as the round trip. For a plain
``redis.Redis`` / ``redis.asyncio.Redis`` client the savers therefore keep a few
connections borrowed from the client's own pool (same host, auth, TLS and timeouts) and
speak RESP on them directly: one ``sendall`` and one parsed reply per call. Any other client
(e.g. ``RedisCluster``) goes through its ``execute_command``/pipeline, which routes by key.

Every script the savers send is idempotent, so a call whose connection broke is retried
once on a fresh connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool as AsyncConnectionPool
from redis.connection import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int
# redis-py's connection classes are not annotated: connections are handled as Any here.
Connection = Any
_RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def pack(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = arg
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(b"\r\n")
    return b"".join(out)


class SyncWire:
    """Runs commands for a blocking client; thread-safe (one connection per call)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        pool = client.connection_pool
        self._pool: ConnectionPool | None = pool if isinstance(pool, ConnectionPool) else None
        self._idle: list[Connection] = []

    def call(self, args: Sequence[Arg]) -> Any:
        """Send one command and return its reply (a ResponseError is raised)."""
        if self._pool is None:
            return self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        reply = self._exchange([pack(args)])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send several commands in one round trip; error replies are returned, not raised."""
        if self._pool is None:
            pipe = self._client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)  # type: ignore[no-untyped-call]
            return pipe.execute(raise_on_error=False)
        return self._exchange([pack(args) for args in commands])

    def _exchange(self, packed: list[bytes]) -> list[Any]:
        assert self._pool is not None
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._pool.get_connection()
        try:
            try:
                replies = self._send(conn, packed)
            except _RETRYABLE:
                conn.disconnect()
                replies = self._send(conn, packed)
        except BaseException:
            conn.disconnect()
            self._pool.release(conn)
            raise
        self._idle.append(conn)
        return replies

    @staticmethod
    def _send(conn: Connection, packed: list[bytes]) -> list[Any]:
        conn.send_packed_command(packed, check_health=False)
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    def close(self) -> None:
        """Give the borrowed connections back to the client's pool."""
        if self._pool is not None:
            while self._idle:
                self._pool.release(self._idle.pop())


class AsyncWire:
    """Runs commands for a ``redis.asyncio`` client, on the event loop that calls it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        pool = client.connection_pool
        self._pool: AsyncConnectionPool | None = (
            pool if isinstance(pool, AsyncConnectionPool) else None
        )
        self._idle: list[Connection] = []

    async def call(self, args: Sequence[Arg]) -> Any:
        """Send one command and return its reply (a ResponseError is raised)."""
        if self._pool is None:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        reply = (await self._exchange([pack(args)]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send several commands in one round trip; error replies are returned, not raised."""
        if self._pool is None:
            pipe = self._client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            return await pipe.execute(raise_on_error=False)
        return await self._exchange([pack(args) for args in commands])

    async def _exchange(self, packed: list[bytes]) -> list[Any]:
        assert self._pool is not None
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            try:
                replies = await self._send(conn, packed)
            except _RETRYABLE:
                await conn.disconnect()
                replies = await self._send(conn, packed)
        except BaseException:
            # cancelled or failed mid-reply: the connection's state is unknown
            await conn.disconnect()
            await self._pool.release(conn)
            raise
        self._idle.append(conn)
        return replies

    @staticmethod
    async def _send(conn: Connection, packed: list[bytes]) -> list[Any]:
        await conn.send_packed_command(packed, check_health=False)
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def aclose(self) -> None:
        """Give the borrowed connections back to the client's pool."""
        if self._pool is not None:
            while self._idle:
                await self._pool.release(self._idle.pop())
