"""The store's failures as the engine speaks of them, so no engine module imports redis.

:func:`store_errors` turns redis-py's connection errors into :class:`StoreUnavailableError`
(and a store's write refusals into their own errors); :data:`STORE_DOWN` and
:data:`STORE_FAILURE` are the exception classes to let through when one run fails and the next
should still be tried (the store going away stops everything).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis

from carebound._errors import StoreUnavailableError

_P = ParamSpec("_P")
_T = TypeVar("_T")

STORE_DOWN: tuple[type[Exception], ...] = (
    StoreUnavailableError,
    redis.ConnectionError,
    redis.TimeoutError,
)
"""The store stopped answering: nothing else can be done now."""
STORE_FAILURE: tuple[type[Exception], ...] = (redis.RedisError, StoreUnavailableError)
"""Any error of the store itself (not of the run's own data or code)."""


def store_errors(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Raise :class:`StoreUnavailableError` instead of redis-py's connection errors, and a
    store's write refusal (``write_refusal``) as its own error."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailableError(
                f"the run store stopped answering during {method.__name__}(): {exc}",
                hint="start Redis or check CAREBOUND_REDIS_URL; runs resume where they "
                "stopped once the store is back (a worker's recover() drives them)",
            ) from exc
        except redis.ResponseError as exc:
            from carebound.store._refusals import write_refusal

            refused = write_refusal(exc)
            if refused is None:
                raise
            raise refused from exc

    return wrapper


def ping(client: redis.Redis) -> None:
    """Check the store answers; raises :class:`StoreUnavailableError` if not."""
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailableError(
            f"the run store does not answer: {exc}",
            hint="start Redis or check CAREBOUND_REDIS_URL",
        ) from None
