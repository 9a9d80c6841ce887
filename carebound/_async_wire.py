"""The ``redis.asyncio`` side of :mod:`carebound._wire`: a binary sibling of a decoding client,
and the wire that sends commands on connections borrowed from the client's own pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool as AsyncConnectionPool
from redis.exceptions import ResponseError

from carebound._wire import (
    _RETRYABLE,
    Arg,
    AsyncClient,
    Connection,
    _decodes,
    _decoding_error,
    _Heads,
    pack,
)


def async_binary_client(
    client: AsyncClient, *, user: str = "the saver"
) -> tuple[AsyncClient, bool]:
    """The ``redis.asyncio`` counterpart of :func:`binary_client`."""
    if not _decodes(client):
        return client, False
    if not isinstance(client, aioredis.Redis):
        raise _decoding_error(user)
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    sibling = aioredis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    return aioredis.Redis.from_pool(sibling), True  # its aclose() disconnects the sibling pool


class AsyncWire:
    """Runs commands for a ``redis.asyncio`` client, on the event loop that calls it."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        pool = getattr(client, "connection_pool", None)
        self._pool: AsyncConnectionPool | None = (
            pool if isinstance(pool, AsyncConnectionPool) else None
        )
        self._idle: list[Connection] = []
        self._heads = _Heads()

    async def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """``EVALSHA sha len(keys) *keys *args``; a ResponseError (NOSCRIPT too) is raised."""
        if self._pool is None:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        reply = (await self._exchange([self._heads.evalsha(sha, keys, args)]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def call(self, args: Sequence[Arg]) -> Any:
        """Send one command and return its reply (a ResponseError is raised)."""
        if self._pool is None:
            return await self._client.execute_command(*args)
        reply = (await self._exchange([pack(args)]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def load_script(self, source: str) -> None:
        """SCRIPT LOAD (on every primary, for a cluster client)."""
        if self._pool is None:
            await self._client.script_load(source)
        else:
            await self.call(["SCRIPT", "LOAD", source])

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
        await conn.send_packed_command([b"".join(packed)], check_health=False)  # one write
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
