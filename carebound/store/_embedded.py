"""The embedded server: one detached valkey-server (or redis-server) per data directory.

The server outlives the carebound command that started it, so every later command on the
same CAREBOUND_HOME reaches the same data. Its state is all in files there::

    server.json   which binary, and the Unix socket or loopback TCP port it listens on
    server.pid    written by the server, removed when it shuts down cleanly
    server.lock   flock'd while a process starts or stops the server
    server.conf   its config, rewritten at each start
    server.log    its log
    appendonlydir/  the data (AOF, fsync'd every second), replayed at each start
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from carebound._errors import StoreUnavailableError
from carebound.store._binary import find_server_binary, product_name
from carebound.store._files import LOOPBACK, ServerFiles, ServerState
from carebound.store._probe import probe, quick_client
from carebound.store._process import is_server_process, pid_alive
from carebound.store._settings import StoreSettings

START_TIMEOUT = 15.0
"""Seconds a newly started server has to answer PING (replaying its data does not count)."""
LOAD_TIMEOUT = 600.0
"""Seconds a server may spend replaying its data before carebound gives up waiting."""
LOCK_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_PIDFILE_TIMEOUT = 5.0
_TCP_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class EmbeddedStatus:
    """What ``carebound server status`` reports about the embedded server of a data directory."""

    running: bool
    """The server answers PING (or is replaying its data)."""
    pid: int | None
    """Process id of the server, while its process exists."""
    url: str
    """The URL clients use to reach it."""
    socket: Path | None
    """Its Unix socket, when it listens on one."""
    port: int | None
    """Its loopback TCP port, when the socket path was too long."""
    data_dir: Path
    """The data directory (CAREBOUND_HOME)."""
    data_bytes: int
    """Total size of the files in the data directory."""
    version: str | None
    """Server product and version, e.g. ``Valkey 9.1.2``; None when it is not running."""
    binary: str
    """The server binary used for this data directory."""


class _StartError(Exception):
    """A launch attempt failed; the message says how."""


def ensure_server(home: Path) -> ServerState:
    """Return the embedded server of ``home``, starting (or restarting) it if needed.

    Raises:
        StoreUnavailableError: no server binary, or the server did not start.
    """
    files = ServerFiles(home)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot create the carebound data directory {home}: {exc.strerror}",
            hint="set CAREBOUND_HOME to a writable directory",
        ) from exc
    state = files.read_state()
    # A server refusing writes (full disk, ...) is used as it is: reads still work, and each
    # write fails at once saying why, instead of a wait for an answer that never comes.
    if state is not None and probe(state.url) in ("ready", "refusing"):
        return state
    with files.locked(LOCK_TIMEOUT):
        # Another process may have started it while this one waited for the lock.
        state = files.read_state()
        if state is not None:
            if probe(state.url) in ("ready", "refusing"):
                return state
            pid = files.read_pid()
            if pid is not None and is_server_process(pid) and _await_running(files, state, pid):
                return state
        return _start(files, state)


def _await_running(files: ServerFiles, state: ServerState, pid: int) -> bool:
    """Wait for a server whose process exists but does not answer yet (starting, loading).

    Returns:
        True once it answers; False if its process exits meanwhile (it was going away).
    """
    try:
        _wait_ready(files, state.url)
    except _StartError as exc:
        if not pid_alive(pid):
            return False
        raise StoreUnavailableError(
            f"the embedded server in {files.home} (pid {pid}) is running but does not answer "
            f"on its {state.endpoint}: {exc}",
            hint=f"stop it (`carebound server stop`, or `kill {pid}`), then try again",
        ) from exc
    return True


def _start(files: ServerFiles, previous: ServerState | None) -> ServerState:
    binary = find_server_binary(previous.binary if previous else None)
    attempts = 1 if files.socket_fits() else _TCP_ATTEMPTS
    for attempt in range(attempts):
        keep_port = previous.port if previous is not None and attempt == 0 else None
        state = _plan(files, binary, keep_port)
        since = _log_size(files)
        _write_config(files, state)
        files.pidfile.unlink(missing_ok=True)  # a crash leaves it behind
        # Record the endpoint before launching: from now on a second process finds this
        # server (alive, perhaps not answering yet) rather than starting another one.
        files.write_state(state)
        try:
            _launch(files, binary)
            _wait_ready(files, state.url)
        except _StartError as exc:
            tail = files.log_tail(since)
            port_taken = "already in use" in tail
            if port_taken and attempt + 1 < attempts:
                continue
            raise StoreUnavailableError(
                f"the embedded {product_name(binary)} server ({binary}) did not start in "
                f"{files.home}: {exc}\n--- last lines of {files.log} ---\n{tail or '(empty)'}",
                hint="fix what the log reports (a damaged appendonlydir/ can be moved aside to "
                "start empty), or set CAREBOUND_REDIS_URL to an external Redis 7+/Valkey server",
            ) from exc
        return state
    raise AssertionError("unreachable")  # pragma: no cover


def _plan(files: ServerFiles, binary: str, keep_port: int | None) -> ServerState:
    """Choose the endpoint: the Unix socket if its path fits, else a free loopback port."""
    if files.socket_fits():
        return ServerState(binary=binary, socket=str(files.socket))
    port = keep_port if keep_port is not None and _port_free(keep_port) else _free_port()
    return ServerState(binary=binary, port=port)


def _write_config(files: ServerFiles, state: ServerState) -> None:
    settings: list[tuple[str, str]] = [
        ("daemonize", "yes"),
        ("pidfile", str(files.pidfile)),
        ("logfile", str(files.log)),
        ("dir", str(files.home)),
        ("bind", LOOPBACK),
        ("protected-mode", "yes"),
        ("port", str(state.port or 0)),  # 0: no TCP listener
        ("appendonly", "yes"),
        ("appendfsync", "everysec"),
        ("save", ""),  # no RDB snapshots: the AOF is the data
    ]
    if state.socket is not None:
        settings += [("unixsocket", state.socket), ("unixsocketperm", "700")]
    lines = ["# Written by carebound at each start of the embedded server; edits are lost."]
    lines += [f"{name} {_quote(value)}" for name, value in settings]
    files.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _quote(value: str) -> str:
    """Quote a config value the way the server's config parser reads it back."""
    if "\n" in value or "\r" in value:
        raise StoreUnavailableError(
            f"the path {value!r} contains a line break, which the server config cannot hold",
            hint="set CAREBOUND_HOME to a path without line breaks",
        )
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _launch(files: ServerFiles, binary: str) -> None:
    """Run the server; with ``daemonize yes`` it forks into the background and returns."""
    try:
        with files.log.open("ab") as log:
            proc = subprocess.Popen(
                [binary, str(files.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=files.home,
                start_new_session=True,  # no signal from this terminal reaches it
            )
    except OSError as exc:
        raise _StartError(f"cannot run it: {exc.strerror}") from exc
    try:
        code = proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise _StartError("it did not go to the background") from None
    if code != 0:
        raise _StartError(f"it exited with status {code}")


def _wait_ready(files: ServerFiles, url: str) -> None:
    """Wait until ``url`` answers PING; fail fast if the server process goes away."""
    started = time.monotonic()
    while True:
        answer = probe(url, timeout=0.5)
        if answer in ("ready", "refusing"):
            return
        elapsed = time.monotonic() - started
        pid = files.read_pid()
        if pid is None:
            if elapsed > _PIDFILE_TIMEOUT:
                raise _StartError(f"it wrote no pidfile ({files.pidfile})")
        elif not pid_alive(pid):
            raise _StartError(f"its process (pid {pid}) exited")
        limit = LOAD_TIMEOUT if answer == "loading" else START_TIMEOUT
        if elapsed > limit:
            raise _StartError(f"it did not answer within {limit:.0f} s")
        time.sleep(0.01)


def server_status(settings: StoreSettings | None = None) -> EmbeddedStatus | None:
    """Report on the embedded server of ``settings.home``; None if none was ever started there.

    This looks at the embedded server only, whether or not ``CAREBOUND_REDIS_URL`` is set.
    """
    files = ServerFiles((settings or StoreSettings.from_env()).home)
    state = files.read_state()
    if state is None:
        return None
    running, pid, version = False, None, None
    client = quick_client(state.url, 1.0)
    try:
        info = client.info("server")
    except (redis.RedisError, OSError):
        candidate = files.read_pid()
        pid = candidate if candidate is not None and is_server_process(candidate) else None
    else:
        running = True
        pid = int(info["process_id"])
        if "valkey_version" in info:
            version = f"Valkey {info['valkey_version']}"
        else:
            version = f"Redis {info['redis_version']}"
    finally:
        client.close()
    return EmbeddedStatus(
        running=running,
        pid=pid,
        url=state.url,
        socket=Path(state.socket) if state.socket is not None else None,
        port=state.port,
        data_dir=files.home,
        data_bytes=files.size_bytes(),
        version=version,
        binary=state.binary,
    )


def stop_server(settings: StoreSettings | None = None) -> bool:
    """Shut the embedded server of ``settings.home`` down cleanly and wait for it to exit.

    The server writes out its data before exiting (SHUTDOWN, or SIGTERM if it does not
    answer), so a later :func:`~carebound.store.connect` finds everything again.

    Returns:
        True if a server was stopped, False if none was running.

    Raises:
        StoreUnavailableError: the server refused to shut down, or did not exit in time.
    """
    files = ServerFiles((settings or StoreSettings.from_env()).home)
    state = files.read_state()
    if state is None:
        return False
    with files.locked(LOCK_TIMEOUT):
        pid = _request_shutdown(files, state)
        if pid is None:
            return False
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid):
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"the embedded server in {files.home} (pid {pid}) did not exit within "
                    f"{STOP_TIMEOUT:.0f} s of being asked to shut down",
                    hint=f"see {files.log}; `kill -9 {pid}` stops it (the last second of "
                    "writes may be lost)",
                )
            time.sleep(0.01)
    return True


def _request_shutdown(files: ServerFiles, state: ServerState) -> int | None:
    """Ask the server to shut down; return its pid, or None if no server runs."""
    client = quick_client(state.url, 2.0)
    try:
        pid = int(client.info("server")["process_id"])
    except (redis.RedisError, OSError):
        pid = None
    try:
        if pid is not None:
            try:
                client.shutdown()
            except redis.RedisError as exc:
                raise StoreUnavailableError(
                    f"the embedded server in {files.home} (pid {pid}) refused to shut down: {exc}",
                    hint=f"see {files.log}",
                ) from exc
            return pid
    finally:
        client.close()
    recorded = files.read_pid()
    if recorded is not None and is_server_process(recorded):
        os.kill(recorded, signal.SIGTERM)  # the server saves its data on SIGTERM too
        return recorded
    return None


def _log_size(files: ServerFiles) -> int:
    try:
        return files.log.stat().st_size
    except OSError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True
