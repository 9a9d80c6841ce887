"""``--json`` on every command, a JSON error document when it fails, and exit codes that
match the table (a busy port for ``serve``, a case run that fails)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import typer

from carebound.cli import ExitCode, app
from tests.test_cli import cli

DEFAULT_PACK = Path(__file__).resolve().parents[1] / "guardrails" / "packs" / "default.yaml"


def _leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if hasattr(command, "commands"):  # a group (Typer's own click)
        return [
            leaf for name, sub in command.commands.items() for leaf in _leaves(sub, (*path, name))
        ]
    return [path]


def test_every_command_takes_json() -> None:
    root: Any = typer.main.get_command(app)
    missing = []
    leaves = _leaves(root)
    assert len(leaves) >= 25  # the whole tree was walked
    for path in leaves:
        command: Any = root
        for name in path:
            command = command.commands[name]
        flags = {flag for param in command.params for flag in getattr(param, "opts", [])}
        if "--json" not in flags:
            missing.append(" ".join(path))
    assert missing == []


def _error(result_stdout: str) -> dict[str, Any]:
    document = json.loads(result_stdout)
    assert set(document) == {"error"}
    error: dict[str, Any] = document["error"]
    assert set(error) == {"code", "message", "hint", "exit_code"}
    return error


@pytest.mark.parametrize(
    ("args", "exit_code", "code"),
    [
        (["show", "r000000000000-1"], ExitCode.NOT_FOUND, "not_found"),
        (["status", "r000000000000"], ExitCode.NOT_FOUND, "not_found"),
        (["runs", "--status", "bogus"], ExitCode.BAD_INPUT, "cli_input"),
        (["inbox", "--limit", "0"], ExitCode.BAD_INPUT, "usage"),
        (["tokens", "revoke", "nobody"], ExitCode.NOT_FOUND, "not_found"),
        (["reviewers", "--policy", "no-such-pack"], ExitCode.BAD_INPUT, None),
    ],
)
def test_a_failing_json_command_prints_an_error_document(
    env: str, args: list[str], exit_code: ExitCode, code: str | None
) -> None:
    result = cli(*args, "--json", code=int(exit_code))
    error = _error(result.stdout)
    assert error["exit_code"] == int(exit_code)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert "rror" in result.stderr  # the people's message is still on stderr


def test_unreachable_store_json_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.servers import free_port

    monkeypatch.setenv("CAREBOUND_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path))
    error = _error(cli("inbox", "--json", code=int(ExitCode.STORE_UNAVAILABLE)).stdout)
    assert error["code"] == "store_unavailable"


def test_serve_on_a_busy_port_says_so_and_exits_2(env: str) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        result = cli("serve", "--port", str(port), code=int(ExitCode.BAD_INPUT))
        assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in result.stderr
        assert "--port" in result.stderr  # the hint
        error = _error(cli("serve", "--port", str(port), "--json", code=2).stdout)
        assert "already in use" in error["message"]
    finally:
        busy.close()


def test_a_case_run_that_fails_exits_1(env: str, case_file: Path, tmp_path: Path) -> None:
    pack = DEFAULT_PACK.read_text(encoding="utf-8")
    starved = "budgets: {steps: 40, tool_calls: 12, elapsed: P14D}"
    assert starved in pack
    tight = tmp_path / "tight.yaml"
    tight.write_text(pack.replace(starved, "budgets: {steps: 1, tool_calls: 1, elapsed: P14D}", 1))
    args = ["run", "--agent", "demo", "--case", str(case_file), "--policy", str(tight)]
    report = json.loads(cli(*args, "--json", code=int(ExitCode.FAILED)).stdout)
    assert report["status"] == "budget_exhausted"
    cli(*args, code=int(ExitCode.FAILED))


def test_json_of_the_web_commands(env: str) -> None:
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert {"id", "name", "roles", "can_sign_in"} <= set(listed["reviewers"][0])
    created = json.loads(
        cli("tokens", "create", "fax-gateway", "--scope", "deliver", "--json").stdout
    )
    assert created["token"].startswith("cbt_")
    assert created["name"] == "fax-gateway" and created["scopes"] == ["deliver"]
    tokens = json.loads(cli("tokens", "list", "--json").stdout)["tokens"]
    assert [t["name"] for t in tokens] == ["fax-gateway"]
    assert created["token"] not in json.dumps(tokens)  # listed, never shown again
    assert json.loads(cli("tokens", "revoke", "fax-gateway", "--json").stdout) == {
        "revoked": "fax-gateway"
    }
    assert json.loads(cli("logout", "--json").stdout) == {"signed_out": False, "revoked": None}


def _groups(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not hasattr(command, "commands"):
        return []
    below = [g for name, sub in command.commands.items() for g in _groups(sub, (*path, name))]
    return [path, *below] if path else below


def test_every_command_group_takes_json_where_it_is_named(env: str) -> None:
    # 'carebound users --json' said "No such option: --json" (exit 2): only subcommands took it
    root: Any = typer.main.get_command(app)
    groups = _groups(root)
    assert {("users",), ("tokens",), ("server",), ("eval",), ("audit",)} <= set(groups)
    for path in groups:
        if path == ("worker",):  # a command of its own (its subcommands are extras), not a menu
            continue
        listed = json.loads(cli(*path, "--json").stdout)
        command: Any = root
        for name in path:
            command = command.commands[name]
        assert listed["command"] == "carebound " + " ".join(path)
        assert [c["name"] for c in listed["commands"]] == list(command.commands)
    # before the command's name, --json is that command's
    assert json.loads(cli("tokens", "--json", "list").stdout) == {"tokens": []}
    assert "reviewers" in json.loads(cli("users", "--json", "list").stdout)
    assert "data_dir" in json.loads(cli("server", "--json", "status").stdout)
    error = _error(cli("audit", "--json", "r000000000000", code=5).stdout)
    assert error["code"] == "not_found"
    assert _error(cli("eval", "--json", "documents", "--split", "x", code=2).stdout)
