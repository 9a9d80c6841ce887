"""Command lists in ``--help`` show each command's first help paragraph as running text: on a
wide terminal each fits one line (Typer kept the docstrings' line breaks there, so lists broke
mid-sentence at every width, 80 columns included)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from carebound.cli import app

GROUPS = [(), ("audit",), ("worker",), ("server",), ("users",), ("tokens",), ("eval",)]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: " ".join(g) or "carebound")
def test_each_command_is_listed_with_its_first_paragraph_on_one_line(
    group: tuple[str, ...],
) -> None:
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    root = typer.main.get_command(app)
    command = root
    for name in group:
        command = command.commands[name]  # type: ignore[attr-defined]
    lines = [line.strip(" │") for line in result.output.splitlines()]
    listed = 0
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        first = " ".join(inspect.cleandoc(sub.help or "").split("\n\n")[0].split())
        if sub.hidden or not first:
            continue
        assert any(line.startswith(name) and line.endswith(first) for line in lines), (
            f"{name}: {first!r} not on one line in:\n{result.output}"
        )
        listed += 1
    assert listed


def test_the_exit_codes_and_environment_fit_80_columns() -> None:
    # Rich pads the epilog by a column each side; a longer line wrapped at column 0, under
    # the indented table it belongs to.
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    epilog = result.output[result.output.index("Exit codes:") :]
    lines = [line.rstrip() for line in epilog.splitlines() if line.strip()]
    rows = [line for line in lines if not line.endswith(":")]  # not the two headings
    assert all(line.startswith("  ") for line in rows), epilog  # every row indented
    assert "3  decision refused" in epilog and "the run's state does not allow now" in epilog


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_each_commands_help_paragraphs_are_running_text() -> None:
    # Typer keeps a docstring's line breaks in a command's later help paragraphs, so at 80
    # columns 'carebound run --help' broke mid-sentence ('A case run stops at the' / 'first
    # hold or wait: ...'); on a 400-column terminal each paragraph fits one line
    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        lines = [" ".join(line.strip(" │").split()) for line in result.output.splitlines()]
        for paragraph in inspect.cleandoc(command.help or "").split("\n\n")[1:]:
            layout = paragraph.startswith("\b") or any(
                line[:1] in (" ", "-", "*") for line in paragraph.split("\n")[1:]
            )
            text = " ".join(paragraph.split())
            if layout or len(text) > 350:
                continue
            assert text in lines, f"{' '.join(path)}: {text!r} is not one line in\n{result.output}"
            checked += 1
    assert checked >= 6  # run, purge, show, login, serve, audit export, audit archive
