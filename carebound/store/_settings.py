"""Where carebound finds its run store: read from the environment once, then passed around."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REDIS_URL_VAR = "CAREBOUND_REDIS_URL"
CLUSTER_VAR = "CAREBOUND_REDIS_CLUSTER"
HOME_VAR = "CAREBOUND_HOME"
ARCHIVE_VAR = "CAREBOUND_ARCHIVE"
ARCHIVE_NAME = "purged-runs.jsonl"
"""The archive's file name in :attr:`StoreSettings.home` when ``CAREBOUND_ARCHIVE`` is unset."""


def _default_home() -> Path:
    """The user's data directory for carebound (``~/.local/share/carebound`` on Linux,
    ``~/Library/Application Support/carebound`` on macOS): one store per user, whatever the
    current directory (a directory-relative default left a new empty store, and a server, in
    every directory a command ran in)."""
    from platformdirs import user_data_path

    return user_data_path("carebound", appauthor=False)


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """How to reach the run store: an external Redis, or the embedded server's data directory."""

    redis_url: str | None = None
    """URL of an external Redis 7+/Valkey server (``redis://``, ``rediss://`` or ``unix://``).

    ``None`` means: use the embedded server kept in :attr:`home`."""

    cluster: bool = False
    """``redis_url`` names a node of a Redis Cluster (``CAREBOUND_REDIS_CLUSTER=1``): clients
    are cluster clients that route every key to its slot's node."""

    home: Path = field(default_factory=_default_home)
    """carebound's data directory (absolute); the embedded server keeps its files here."""

    archive: Path | None = None
    """The file a purge over the API or the web inbox appends the purged runs' audit chains
    to (``CAREBOUND_ARCHIVE``); None: ``purged-runs.jsonl`` in :attr:`home`. See
    :attr:`archive_file`."""

    def __post_init__(self) -> None:
        # An absolute, canonical path: every process on this directory must agree on the
        # lock file, the socket path and the URL it derives from them.
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        if self.archive is not None:
            object.__setattr__(self, "archive", Path(self.archive).expanduser().resolve())

    @property
    def archive_file(self) -> Path:
        """Where the server's purges archive audit chains: :attr:`archive`, else
        ``purged-runs.jsonl`` in :attr:`home`."""
        return self.archive if self.archive is not None else self.home / ARCHIVE_NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Read ``CAREBOUND_REDIS_URL``, ``CAREBOUND_REDIS_CLUSTER``, ``CAREBOUND_HOME``
        (default: the user's data directory, see :func:`_default_home`) and
        ``CAREBOUND_ARCHIVE``.

        Args:
            environ: the variables to read; ``os.environ`` when omitted.
        """
        env = os.environ if environ is None else environ
        url = env.get(REDIS_URL_VAR, "").strip() or None
        home_value = env.get(HOME_VAR, "").strip()
        home = Path(home_value) if home_value else _default_home()
        cluster = env.get(CLUSTER_VAR, "").strip().lower() in ("1", "true", "yes")
        archive = env.get(ARCHIVE_VAR, "").strip()
        return cls(
            redis_url=url, home=home, cluster=cluster and url is not None,
            archive=Path(archive) if archive else None,
        )  # fmt: skip
