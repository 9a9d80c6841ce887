"""Store URLs: check them before use, and mask their secrets before showing them."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from carebound._errors import StoreUnavailableError

SCHEMES = ("redis", "rediss", "unix")
_MASK = "***"
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return ``url`` with its password (in the userinfo or a ``password=`` query) masked.

    >>> mask_url("redis://app:s3cret@db.example:6379/0")
    'redis://app:***@db.example:6379/0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparseable: keep only the scheme, never echo a possible secret.
        return url.split("://", 1)[0] + "://" + _MASK if "://" in url else _MASK
    masked = url
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        if sep:
            masked = masked.replace(parts.netloc, f"{user}:{_MASK}@{hostport}", 1)
    # Edited in place rather than re-joined: urlunsplit drops the "//" of "unix:///path".
    return _QUERY_PASSWORD.sub(rf"\g<1>{_MASK}", masked)


def check_url(url: str) -> None:
    """Raise :class:`StoreUnavailableError` unless ``url`` is a usable Redis URL."""
    shown = mask_url(url)
    hint = "use redis://[user:password@]host[:port][/db], rediss://... for TLS, or unix:///path"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise StoreUnavailableError(
            f"CAREBOUND_REDIS_URL is not a valid URL: {shown} ({exc})", hint=hint
        ) from exc
    if parts.scheme not in SCHEMES:
        raise StoreUnavailableError(
            f"CAREBOUND_REDIS_URL has an unsupported scheme {parts.scheme!r}: {shown}", hint=hint
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise StoreUnavailableError(
                f"CAREBOUND_REDIS_URL names no socket path: {shown}", hint=hint
            )
        return
    if not parts.hostname:
        raise StoreUnavailableError(f"CAREBOUND_REDIS_URL names no host: {shown}", hint=hint)
    if port == 0:
        raise StoreUnavailableError(f"CAREBOUND_REDIS_URL has port 0: {shown}", hint=hint)
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise StoreUnavailableError(
            f"CAREBOUND_REDIS_URL has a database {db!r} that is not a number: {shown}", hint=hint
        )


def unix_url(path: str) -> str:
    """The ``unix://`` URL of a socket path (percent-encoded, database 0)."""
    return f"unix://{quote(path)}?db=0"


def tcp_url(host: str, port: int) -> str:
    """The ``redis://`` URL of a loopback TCP endpoint (database 0)."""
    return f"redis://{host}:{port}/0"
