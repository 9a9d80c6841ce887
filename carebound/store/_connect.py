"""Find the run store: an external Redis named by CAREBOUND_REDIS_URL, or the embedded server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import redis
import redis.asyncio

from carebound._errors import StoreUnavailableError, StoreWriteRefusedError
from carebound.store._binary import product_name
from carebound.store._embedded import ensure_server
from carebound.store._files import ServerFiles
from carebound.store._probe import quick_client
from carebound.store._refusals import write_refusal
from carebound.store._settings import StoreSettings
from carebound.store._urls import check_url, mask_url

PING_TIMEOUT = 2.0
"""Seconds to wait for an external server to accept the connection and answer PING."""


@dataclass(frozen=True, kw_only=True)
class Store:
    """A reachable run store: where it is, and clients for it."""

    url: str = field(repr=False)
    """The URL clients use (may hold a password; show :attr:`description` instead)."""
    kind: Literal["external", "embedded"]
    """``external``: CAREBOUND_REDIS_URL; ``embedded``: the server in CAREBOUND_HOME."""
    description: str
    """One short line for people, with any password masked."""
    cluster: bool = False
    """The URL names a node of a Redis Cluster: :meth:`client` is a cluster client."""

    def client(self) -> redis.Redis:
        """A new synchronous client (bytes in, bytes out); a ``RedisCluster`` (which speaks
        the same commands, routed by key) for a cluster."""
        if self.cluster:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(self.url, decode_responses=False)  # type: ignore[return-value]
        return redis.Redis.from_url(self.url, decode_responses=False)

    def async_client(self) -> redis.asyncio.Redis:
        """A new asyncio client (bytes in, bytes out)."""
        return redis.asyncio.Redis.from_url(self.url, decode_responses=False)


def connect(
    settings: StoreSettings | None = None,
    *,
    announce: Callable[[str], None] | None = None,
) -> Store:
    """Find the run store, starting the embedded server if needed.

    With ``CAREBOUND_REDIS_URL`` set, that server must answer PING. Otherwise the embedded
    server of ``CAREBOUND_HOME`` is reused, or started in the background (it keeps running
    after this process exits; :func:`~carebound.store.stop_server` stops it).

    Args:
        settings: where to look; read from the environment when omitted.
        announce: called once with :attr:`Store.description` (the CLI prints it).

    Raises:
        StoreUnavailableError: the external server is unreachable or its URL malformed, or
            the embedded server cannot be started.
    """
    settings = settings or StoreSettings.from_env()
    if settings.redis_url is not None:
        store = _external(settings.redis_url, cluster=settings.cluster)
    else:
        fresh = not ServerFiles(settings.home).data.exists()
        state = ensure_server(settings.home)
        store = Store(
            url=state.url,
            kind="embedded",
            description=f"store: embedded {product_name(state.binary)} at {settings.home} "
            f"({state.endpoint})",
        )
    if announce is not None:
        announce(store.description)
        if store.kind == "embedded" and fresh:
            announce(
                f"note: {settings.home} held no store, so a new, empty one was created there "
                "(set CAREBOUND_HOME to use another; 'carebound server stop' stops its server)"
            )
    return store


def _external(url: str, *, cluster: bool = False) -> Store:
    check_url(url)
    shown = mask_url(url)
    client = quick_client(url, PING_TIMEOUT)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        refused = write_refusal(exc)
        if refused is not None:
            raise StoreWriteRefusedError(
                f"the Redis server at {shown} (CAREBOUND_REDIS_URL) answers, but "
                f"{refused.message.removeprefix('the run store ')}",
                hint=refused.hint,
            ) from exc
        raise StoreUnavailableError(
            f"cannot reach the Redis server at {shown} (CAREBOUND_REDIS_URL): {exc}",
            hint="start that server, check the URL (host, port, password), or unset "
            "CAREBOUND_REDIS_URL to use the embedded server",
        ) from exc
    finally:
        client.close()
    what = "Redis Cluster" if cluster else "Redis"
    return Store(url=url, kind="external", description=f"store: {what} at {shown}", cluster=cluster)
