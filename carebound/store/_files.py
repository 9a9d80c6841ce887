"""The embedded server's files in CAREBOUND_HOME, its state record and the start lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from carebound._errors import StoreUnavailableError
from carebound.store._urls import tcp_url, unix_url

LOOPBACK = "127.0.0.1"

# sun_path holds 104 bytes on macOS and 108 on Linux, the terminating NUL included.
MAX_SOCKET_PATH = 103


class ServerState(BaseModel):
    """What carebound records about the embedded server in ``server.json``.

    The pid is not recorded here: the server keeps it in its own pidfile and removes that
    file when it shuts down cleanly.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    binary: str
    """The server binary that runs (and last ran) on this data directory."""
    socket: str | None = None
    """Absolute path of the Unix socket, when the server listens on one."""
    port: int | None = None
    """Loopback TCP port, when the socket path would be too long."""

    @model_validator(mode="after")
    def _one_endpoint(self) -> ServerState:
        if (self.socket is None) == (self.port is None):
            raise ValueError("exactly one of socket and port must be set")
        return self

    @property
    def url(self) -> str:
        """The URL clients use to reach this server."""
        return (
            unix_url(self.socket) if self.socket is not None else tcp_url(LOOPBACK, self.port or 0)
        )

    @property
    def endpoint(self) -> str:
        """A short human label: ``unix socket`` or ``TCP 127.0.0.1:<port>``."""
        return "unix socket" if self.socket is not None else f"TCP {LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class ServerFiles:
    """Paths of the embedded server's files inside one data directory."""

    home: Path
    """The data directory (CAREBOUND_HOME), absolute."""

    @property
    def config(self) -> Path:
        """The server's config file, rewritten at every start."""
        return self.home / "server.conf"

    @property
    def log(self) -> Path:
        """The server's log, appended across restarts."""
        return self.home / "server.log"

    @property
    def pidfile(self) -> Path:
        """Written by the server; removed by a clean shutdown."""
        return self.home / "server.pid"

    @property
    def socket(self) -> Path:
        """The Unix socket, when its path is short enough."""
        return self.home / "server.sock"

    @property
    def state(self) -> Path:
        """The :class:`ServerState` record (JSON)."""
        return self.home / "server.json"

    @property
    def lock(self) -> Path:
        """Held while a process starts or stops the server."""
        return self.home / "server.lock"

    @property
    def data(self) -> Path:
        """The data (AOF files), made by the server's first start: no such directory, no
        store yet."""
        return self.home / "appendonlydir"

    def socket_fits(self) -> bool:
        """True if the socket path fits in a ``sockaddr_un`` on every supported platform."""
        return len(os.fsencode(self.socket)) <= MAX_SOCKET_PATH

    def read_state(self) -> ServerState | None:
        """The recorded state, or None if there is none (or it is unreadable)."""
        try:
            return ServerState.model_validate_json(self.state.read_bytes())
        except (OSError, ValidationError):
            return None

    def write_state(self, state: ServerState) -> None:
        """Record ``state`` atomically, so a reader never sees half a file."""
        tmp = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        tmp.write_text(state.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.state)

    def read_pid(self) -> int | None:
        """The pid in the server's pidfile, or None."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self, since: int = 0, lines: int = 20) -> str:
        """The last ``lines`` lines the server logged after byte offset ``since``."""
        try:
            with self.log.open("rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def size_bytes(self) -> int:
        """Total size of the regular files in the data directory."""
        total = 0
        for root, _dirs, names in os.walk(self.home):
            for name in names:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(root, name))
                    total += st.st_size if stat.S_ISREG(st.st_mode) else 0
        return total

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold an exclusive ``flock`` on the lock file, waiting at most ``timeout`` seconds.

        Raises:
            StoreUnavailableError: another process held the lock for the whole wait.
        """
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"another process has been starting or stopping the embedded server "
                        f"in {self.home} for over {timeout:.0f} s (lock {self.lock})",
                        hint="wait for it to finish, or stop the process that holds the lock",
                    )
                time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
