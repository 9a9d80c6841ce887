"""The audit key: events are signed with it, a wrong or missing key fails verification, keys
rotate by id, and configuration errors are clear (real Redis; the CLI where it is the user's
way in)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from carebound.audit import Actor, AuditKeyError, AuditKeyring, AuditLog
from carebound.cli import app
from carebound.state.audit_codec import unpack_event

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
K1 = "k1:first-secret-of-at-least-16"
K2 = "k2:second-secret-of-at-least-16"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def record(log: AuditLog, run_id: str, n: int) -> None:
    for i in range(n):
        log.record(
            run_id,
            time=T0,
            actor=Actor(kind="agent", id="demo"),
            action="event",
            category="system",
            outcome="success",
            detail={"i": i},
        )


def test_a_chain_verified_with_another_key_fails(client: redis.Redis, key_prefix: str) -> None:
    record(AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K1)), "run-k", 3)

    same_id_other_secret = AuditKeyring.of("k1:not-the-secret-that-signed")
    result = AuditLog(client, prefix=key_prefix, keyring=same_id_other_secret).verify("run-k")

    assert not result.ok
    assert [p.split(" (entry")[0] for p in result.problems] == ["seq 1", "seq 2", "seq 3"]
    assert all("MAC mismatch under key 'k1'" in p for p in result.problems)


def test_keys_rotate_by_id(client: redis.Redis, key_prefix: str) -> None:
    record(AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K1)), "run-r", 2)
    rotated = AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K2, K1))
    record(rotated, "run-r", 2)

    assert [e.key_id for e in rotated.events("run-r")] == ["k1", "k1", "k2", "k2"]
    assert rotated.verify("run-r").ok
    assert AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K1, K2)).verify("run-r").ok

    dropped = AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K2)).verify("run-r")
    assert not dropped.ok
    assert len(dropped.problems) == 2
    assert all("signed with audit key 'k1', which is not configured" in p for p in dropped.problems)
    assert "CAREBOUND_AUDIT_KEYS" in dropped.problems[0]


def test_an_unsigned_event_does_not_verify(client: redis.Redis, key_prefix: str) -> None:
    log = AuditLog(client, prefix=key_prefix, keyring=AuditKeyring.of(K1))
    record(log, "run-u", 2)
    stream = f"{key_prefix}:{{run-u}}:audit"
    entries = client.xrange(stream)
    items = [json.loads(unpack_event(f[b"event"])) for _, f in entries]
    for item in items:  # stripped of key and MAC: what a plain hash chain would accept
        del item["mac"], item["key_id"]
    client.delete(stream)
    for item in items:
        client.xadd(stream, {"event": json.dumps(item, sort_keys=True, separators=(",", ":"))})

    problems = log.verify("run-u").problems

    assert any("seq 1 (entry" in p and "not signed" in p for p in problems), problems


def test_keyring_from_environment() -> None:
    bare = AuditKeyring.from_env({"CAREBOUND_AUDIT_KEY": "a-bare-secret-0123456789"}, home=Path())
    assert (bare.signing_id, list(bare.keys)) == ("default", ["default"])
    env = {"CAREBOUND_AUDIT_KEY": f" {K2} ", "CAREBOUND_AUDIT_KEYS": f"{K1}, old:{'x' * 20}"}
    rotated = AuditKeyring.from_env(env, home=Path())
    assert rotated.signing_id == "k2"
    assert sorted(rotated.keys) == ["k1", "k2", "old"]
    assert rotated.keys["k1"] == b"first-secret-of-at-least-16"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CAREBOUND_AUDIT_KEY": "k1:short"}, "CAREBOUND_AUDIT_KEY: the secret of key 'k1' has 5"),
        ({"CAREBOUND_AUDIT_KEY": "bad id:0123456789abcdef"}, "key id 'bad id' is not a valid"),
        ({"CAREBOUND_AUDIT_KEY": K1, "CAREBOUND_AUDIT_KEYS": "0123456789abcdefgh"}, "ID:SECRET"),
        (
            {"CAREBOUND_AUDIT_KEY": K1, "CAREBOUND_AUDIT_KEYS": "k1:another-secret-entirely"},
            "key id 'k1' is given twice",
        ),
    ],
)
def test_malformed_key_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(AuditKeyError) as info:
        AuditKeyring.from_env(env, home=Path())
    assert message in str(info.value)
    assert info.value.hint


def test_key_file_is_generated_0600_once_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"

    first = AuditKeyring.from_env({}, home=home)
    second = AuditKeyring.from_env({}, home=home)

    key_file = home / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first == second and first.signing_id.startswith("local-")
    assert len(first.keys[first.signing_id]) == 64  # 32 random bytes, hex
    assert "secret" not in repr(first) and first.keys[first.signing_id].decode() not in repr(first)
    assert AuditKeyring.from_env({}, home=tmp_path / "elsewhere").signing_id != first.signing_id
    assert list(home.iterdir()) == [key_file]  # no temporary file left behind


def test_key_file_lines_rotate_and_loose_permissions_are_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(f"# newest first\n{K2}\n{K1}\n")
    key_file.chmod(0o600)
    keyring = AuditKeyring.from_env({}, home=tmp_path)
    assert (keyring.signing_id, sorted(keyring.keys)) == ("k2", ["k1", "k2"])

    key_file.chmod(0o644)
    with pytest.raises(AuditKeyError, match="can be read by other users") as info:
        AuditKeyring.from_env({}, home=tmp_path)
    assert info.value.hint == f"chmod 600 {key_file}"


# -- through the CLI ------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> Path:
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("CAREBOUND_AUDIT_KEYS", raising=False)
    return tmp_path / "home"


def start(case: Any, tmp_path: Path) -> str:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["run", "--agent", "demo", "--case", str(path), "--requester", "sam", "--json"]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    run_id: str = json.loads(result.stdout)["run_id"]
    return run_id


def test_cli_without_a_configured_key_uses_the_home_key_file(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, demo_case: Any, tmp_path: Path
) -> None:
    monkeypatch.delenv("CAREBOUND_AUDIT_KEY")
    run_id = start(demo_case, tmp_path)

    assert stat.S_IMODE((cli_env / "audit.key").stat().st_mode) == 0o600
    assert CliRunner().invoke(app, ["audit", run_id, "--verify"]).exit_code == 0

    generated = (cli_env / "audit.key").read_text().split(":")[0]
    monkeypatch.setenv("CAREBOUND_AUDIT_KEY", f"{generated}:some-other-secret-entirely")
    wrong = CliRunner().invoke(app, ["audit", run_id, "--verify"])
    assert wrong.exit_code == 1
    assert f"MAC mismatch under key '{generated}'" in wrong.stdout

    monkeypatch.setenv("CAREBOUND_HOME", str(cli_env.parent / "another-host"))
    monkeypatch.delenv("CAREBOUND_AUDIT_KEY")
    elsewhere = CliRunner().invoke(app, ["audit", run_id, "--verify"])
    assert elsewhere.exit_code == 1
    assert f"signed with audit key '{generated}', which is not configured" in elsewhere.stdout


def test_cli_refuses_a_malformed_key_clearly(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, demo_case: Any, tmp_path: Path
) -> None:
    run_id = start(demo_case, tmp_path)
    monkeypatch.setenv("CAREBOUND_AUDIT_KEY", "k1:short")

    result = CliRunner().invoke(app, ["audit", run_id, "--verify"])

    assert result.exit_code == 2
    assert "error: CAREBOUND_AUDIT_KEY: the secret of key 'k1' has 5 characters" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_a_bad_audit_key_refuses_a_start_before_any_write(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, demo_case: Any, tmp_path: Path,
    redis_client: redis.Redis, key_prefix: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("CAREBOUND_AUDIT_KEY", "k1:short")
    path = tmp_path / "case.json"
    path.write_text(json.dumps(demo_case), encoding="utf-8")

    result = CliRunner().invoke(
        app, ["run", "--agent", "demo", "--case", str(path), "--requester", "sam"]
    )

    assert result.exit_code == 2, result.stdout + result.stderr
    assert "CAREBOUND_AUDIT_KEY" in result.stderr and "Traceback" not in result.stderr
    assert list(redis_client.scan_iter(match=f"{key_prefix}:*")) == []  # nothing written


def test_the_help_names_the_audit_key_variables() -> None:
    helptext = CliRunner().invoke(app, ["--help"]).stdout
    assert "CAREBOUND_AUDIT_KEY " in helptext and "CAREBOUND_AUDIT_KEYS" in helptext
