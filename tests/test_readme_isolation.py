"""The README's example tests leave the Redis server they are given alone.

``CAREBOUND_TEST_REDIS_URL`` may name a developer's own server; its other databases can hold
real data, so the README's examples run on a server the fixtures start and own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import redis

from tests.conftest import PROJECT


def test_readme_examples_leave_the_given_servers_databases_alone(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    sentinel = f"users-own-data:{uuid.uuid4().hex}"
    clients = {db: redis.Redis.from_url(f"{base}/{db}") for db in range(16)}
    try:
        for client in clients.values():
            client.set(sentinel, "keep me")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_readme.py",
            ],
            cwd=PROJECT,
            env={**os.environ, "CAREBOUND_TEST_REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:]
        lost = [db for db, client in clients.items() if client.get(sentinel) != b"keep me"]
        assert lost == [], f"the README tests emptied database(s) {lost} of the given server"
    finally:
        for client in clients.values():
            client.delete(sentinel)
            client.close()
