"""One quick PING against a server URL, without redis-py's retries and back-off."""

from __future__ import annotations

from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from carebound.store._refusals import write_refusal

Probe = Literal["ready", "loading", "refusing", "down"]
"""``refusing``: it answers, but refuses writes (and PING) because it cannot save to disk, is a
replica, or is out of memory: waiting does not help, so callers use it and let the write fail
with the reason (see ``carebound.store._refusals``)."""


def quick_client(url: str, timeout: float) -> redis.Redis:
    """A client that fails fast: short timeouts and no retries."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def probe(url: str, timeout: float = 1.0) -> Probe:
    """PING ``url``: ``ready``, ``loading`` (replaying its data), ``refusing`` (it answers but
    refuses writes), or ``down``."""
    client = quick_client(url, timeout)
    try:
        client.ping()
    except redis.BusyLoadingError:
        return "loading"
    except redis.ResponseError as exc:
        return "refusing" if write_refusal(exc) is not None else "down"
    except (redis.RedisError, OSError):
        return "down"
    else:
        return "ready"
    finally:
        client.close()
