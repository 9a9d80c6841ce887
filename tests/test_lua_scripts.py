"""Every Lua script is a ``.lua`` file under carebound/state/lua/, loaded by one module
(carebound.state._scripts), documented in its header and used by the package; nothing keeps
state on the caller's Redis client."""

from __future__ import annotations

import gc
import hashlib
import re
import tomllib
import weakref
from pathlib import Path

import pytest
import redis

from carebound import _async_wire, _wire
from carebound.state import lua
from carebound.state.lua import Script, helper_names, script, script_names
from carebound.state.pipeline import run

PROJECT = Path(__file__).resolve().parent.parent
LUA = PROJECT / "carebound" / "state" / "lua"
# carebound's import namespace: carebound/ plus the top-level folders mapped into it
PACKAGE_FOLDERS = [PROJECT / name for name in ("carebound", "agents", "tools", "guardrails")]


def _package_sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for folder in PACKAGE_FOLDERS
        for path in folder.rglob("*.py")
    }


def lua_in_python(sources: dict[Path, str]) -> list[str]:
    """The package's .py files that hold Lua (a ``redis.call(`` in their text)."""
    return sorted(str(path) for path, text in sources.items() if "redis.call(" in text)


def unused_scripts(sources: dict[Path, str]) -> list[str]:
    """Scripts that no .py file of the package loads by name (``script("<name>")``)."""
    loaded: set[str] = set()
    for text in sources.values():
        loaded.update(re.findall(r"""script\(\s*["']([a-z0-9_]+)["']\s*\)""", text))
    return sorted(set(script_names()) - loaded)


def test_no_python_file_of_the_package_holds_lua() -> None:
    assert lua_in_python(_package_sources()) == []


def test_the_check_finds_lua_left_in_python(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text('X = """\nreturn redis.call(\'GET\', KEYS[1])\n"""\n')
    sources = {**_package_sources(), stray: stray.read_text()}
    assert lua_in_python(sources) != []


def script_senders(sources: dict[Path, str]) -> list[str]:
    """The package's .py files outside carebound/state/ (and the wire, which sends what it is
    given) that send ``EVALSHA`` or handle ``NOSCRIPT`` themselves."""
    state = PROJECT / "carebound" / "state"
    return sorted(
        str(path)
        for path, text in sources.items()
        if state not in path.parents
        and path != PROJECT / "carebound" / "_wire.py"
        and ('"EVALSHA"' in text or "NoScriptError" in text)
    )


def test_only_the_state_package_sends_scripts() -> None:
    """The checkpoint savers too go through the one loader (carebound.state.lua)."""
    assert script_senders(_package_sources()) == []


def test_the_sender_check_can_fail(tmp_path: Path) -> None:
    stray = tmp_path / "saver.py"
    stray.write_text('wire.call_many([["EVALSHA", sha, 1, key]])\n')
    assert script_senders({stray: stray.read_text()}) == [str(stray)]


def test_every_script_is_used_by_the_package() -> None:
    assert unused_scripts(_package_sources()) == []


def test_the_check_finds_an_unused_script() -> None:
    sources = {
        path: text.replace('script("lease_renew")', "None")
        for path, text in _package_sources().items()
    }
    assert unused_scripts(sources) == ["lease_renew"]


def test_every_lua_file_is_a_script_or_a_helper_the_loader_reads() -> None:
    files = {p.stem for p in LUA.glob("*.lua")}
    assert files == set(script_names()) | {f"_{h}" for h in helper_names()}
    assert len(script_names()) >= 20
    included: set[str] = set()
    for name in script_names():
        loaded = script(name)
        included.update(h for h in helper_names() if f"local function {h}(" in loaded.source)
    assert included == set(helper_names()), "a helper no script calls"


def test_every_file_opens_with_its_contract() -> None:
    for path in sorted(LUA.glob("*.lua")):
        text = path.read_text()
        header = text[: text.index("\n", text.index("\n") + 1)] if "\n" in text else text
        assert text.startswith("-- "), path.name
        if path.stem.startswith("_"):
            assert header.startswith(f"-- Helper {path.stem[1:]}:"), path.name
            assert f"local function {path.stem[1:]}(" in text, path.name
        else:
            comments = "\n".join(line for line in text.splitlines() if line.startswith("--"))
            for part in ("KEYS", "ARGV", "Reply:"):
                assert part in comments, f"{path.name}: no {part} in its header"


def test_the_lua_files_are_package_data() -> None:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]
    assert "*.lua" in data["carebound.state.lua"]
    assert "carebound.state.lua" in config["tool"]["setuptools"]["packages"]


def test_a_script_gets_its_helpers_before_it_and_each_once() -> None:
    put = script("checkpoint_put")
    for helper in ("fence", "ns_keys", "refresh_ttl", "call_chunked"):
        assert put.source.count(f"local function {helper}(") == 1
    # refresh_ttl calls ns_keys: ns_keys must be defined first
    assert put.source.index("function ns_keys(") < put.source.index("function refresh_ttl(")
    assert put.source.index("function refresh_ttl(") < put.source.index("local refused")
    assert script("lease_release").source == (LUA / "lease_release.lua").read_text()


def test_scripts_are_read_once_and_unknown_names_refused() -> None:
    assert script("lease_acquire") is script("lease_acquire")
    with pytest.raises(KeyError, match="no Lua script"):
        script("no_such_script")
    with pytest.raises(KeyError):
        script("_fence")  # a helper, not a script


def test_every_script_compiles_on_the_server(redis_client: redis.Redis) -> None:
    for name in script_names():
        loaded = script(name)
        assert redis_client.script_load(loaded.source) == loaded.sha, name


def test_a_call_reloads_a_script_the_server_lost(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    hit = script("ratelimit_hit")
    key = f"{key_prefix}:hits"
    assert hit(redis_client, [key], [60]) == 1
    redis_client.script_flush()
    assert hit(redis_client, [key], [60]) == 2


async def test_an_async_call_reloads_a_script_the_server_lost(
    redis_url: str, key_prefix: str
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        hit = script("ratelimit_hit")
        key = f"{key_prefix}:hits"
        assert await hit.acall(client, [key], [60]) == 1
        await client.script_flush()
        assert await hit.acall(client, [key], [60]) == 2
    finally:
        await client.aclose()


def test_scripts_on_a_wire_reload_what_the_server_lost(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    hit = script("ratelimit_hit")
    key, other = f"{key_prefix}:hits", f"{key_prefix}:other"
    wire = _wire.shared_wire(redis_client)
    assert lua.eval_script(wire, hit, [key], [60]) == 1
    redis_client.script_flush()
    replies = lua.eval_many(wire, [(hit, [key], [60]), (hit, [other], [60])], [["GET", "nope"]])
    assert replies == [2, 1, None]
    redis_client.script_flush()
    lua.eval_batched(wire, hit, [([key], [60]), ([other], [60])])
    assert lua.eval_script(wire, hit, [key], [60]) == 4
    with pytest.raises(redis.ResponseError):  # an error reply is raised, not returned
        lua.eval_many(wire, [(hit, [key], [60])], [["HGET", key, "f"]])


async def test_scripts_on_an_async_wire_reload_what_the_server_lost(
    redis_url: str, key_prefix: str
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    wire = _async_wire.AsyncWire(client)
    try:
        hit = script("ratelimit_hit")
        key = f"{key_prefix}:hits"
        assert await lua.aeval_script(wire, hit, [key], [60]) == 1
        await client.script_flush()
        assert await lua.aeval_many(wire, [(hit, [key], [60])], [["GET", "nope"]]) == [2, None]
        await client.script_flush()
        await lua.aeval_batched(wire, hit, [([key], [60])])
        assert await lua.aeval_script(wire, hit, [key], [60]) == 4
    finally:
        await wire.aclose()
        await client.aclose()


def test_a_queued_script_runs_in_a_pipeline(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}:hits"
    redis_client.script_flush()
    replies = run(redis_client, lambda pipe: script("ratelimit_hit").queue(pipe, [key], [60]))
    assert replies == [1]
    assert lua.queued_source(script("ratelimit_hit").sha) == script("ratelimit_hit").source


def test_the_wire_is_not_stored_on_the_callers_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    before = set(vars(client))
    wire = _wire.shared_wire(client)
    assert _wire.shared_wire(client) is wire
    assert set(vars(client)) == before, "an attribute was set on the caller's client"
    assert not [name for name in vars(client) if "carebound" in name]
    run(client, lambda pipe: pipe.ping())
    assert set(vars(client)) == before

    gone = weakref.ref(client)
    wire.close()
    del client, wire
    gc.collect()
    assert gone() is None, "the module's wire keeps the client alive"


def test_a_script_is_named_by_the_sha1_redis_gives_it(redis_client: redis.Redis) -> None:
    echo = Script.from_source("echo", "return ARGV[1]")
    assert echo.sha == hashlib.sha1(b"return ARGV[1]").hexdigest()
    assert redis_client.script_load(echo.source) == echo.sha
