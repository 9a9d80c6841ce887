"""Command lists in ``--help`` show each command's first help paragraph as running text: on a
wide terminal each fits one line (Typer kept the docstrings' line breaks there, so lists broke
mid-sentence at every width, 80 columns included)."""

from __future__ import annotations

import inspect

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
