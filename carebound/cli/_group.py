"""Command groups (``users``, ``tokens``, ``server``, ``eval``, ``audit``) that take ``--json``
where the group is named, as every command does.

``carebound users --json list`` is ``carebound users list --json``; ``carebound users --json``
with no command prints the group's commands as one JSON document (exit 0), as ``carebound
users`` prints its help. It said "No such option: --json" (exit 2) before.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperGroup

from carebound.cli._errors import JSON_FLAG


class JsonGroup(TyperGroup):
    """A Typer group whose own ``--json`` goes to the command named after it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        command_at = next((i for i, arg in enumerate(args[:end]) if not arg.startswith("-")), None)
        leading = args[:end] if command_at is None else args[:command_at]
        if JSON_FLAG in leading:
            if command_at is None and all(arg == JSON_FLAG for arg in leading):
                _print_commands(ctx, self)
                raise typer.Exit(0)
            if command_at is not None:
                rest = [arg for arg in leading if arg != JSON_FLAG]
                name = args[command_at]
                args = [*rest, name, JSON_FLAG, *args[command_at + 1 :]]
        result: list[str] = super().parse_args(ctx, self.route(args))
        return result

    def route(self, args: list[str]) -> list[str]:
        """The command line as the group parses it (a subclass may name a default command)."""
        return args


def _print_commands(ctx: Any, group: TyperGroup) -> None:
    """The group's commands as ``{"command", "help", "commands": [{"name", "help"}]}``."""
    from carebound.cli._session import print_json

    def first_paragraph(text: str | None) -> str:
        return " ".join(inspect.cleandoc(text or "").split("\n\n")[0].split())

    print_json(
        {
            "command": ctx.command_path,
            "help": first_paragraph(group.help),
            "commands": [
                {"name": name, "help": first_paragraph(command.help)}
                for name, command in group.commands.items()
                if not command.hidden
            ],
        }
    )
