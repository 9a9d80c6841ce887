"""The ``carebound`` Typer app: its command groups, and the error boundary around all of them.

Only Typer is imported here; each command imports what it needs (the runner, LangGraph, rich,
fhir.resources) when it runs, so ``carebound --help`` starts fast.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from carebound.cli import (
    _agents,
    _audit,
    _eval,
    _login,
    _manage,
    _report,
    _review,
    _run,
    _runs,
    _server,
    _web,
)
from carebound.cli._errors import (
    EXIT_CODES_HELP,
    error_document,
    print_error_document,
    report_error,
    wants_json,
)

_JSON_META = "carebound.json"


class CareboundGroup(TyperGroup):
    """The app's root group: turns every error a command raises into ``error:``/``hint:`` on
    stderr and an exit code (see :mod:`carebound.cli._errors`), never a traceback."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Bytes that are not UTF-8 reach Python as lone surrogates; no command can store or
        # print them, so they are refused here, once, as a usage error (exit 2).
        for position, arg in enumerate(args, start=1):
            if any("\ud800" <= char <= "\udfff" for char in arg):
                raise typer.BadParameter(
                    f"argument {position} ({arg!a}) is not UTF-8 text", ctx=ctx
                )
        ctx.meta[_JSON_META] = wants_json(args)  # a failure then prints a JSON document too
        return list(super().parse_args(ctx, args))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _one_line_help(command)
        return command

    def invoke(self, ctx: Any) -> Any:
        as_json = bool(ctx.meta.get(_JSON_META))
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Typer's own signals (exit, abort, usage errors) keep their meaning and codes, and
            # Typer quietly ends a command whose reader went away (`carebound runs | head`).
            if type(exc).__module__.split(".")[0] in ("typer", "click") or isinstance(
                exc, BrokenPipeError
            ):
                if as_json and hasattr(exc, "format_message"):  # a usage error
                    exit_code = int(getattr(exc, "exit_code", 2))
                    usage = error_document(exc.format_message(), None, exit_code, "usage")
                    print_error_document(usage)
                raise
            raise typer.Exit(int(report_error(exc, as_json=as_json))) from None


def _one_line_help(command: Any) -> None:
    """List ``command`` (and its subcommands) with its help's first paragraph as one line of
    text: Typer's rich help keeps a docstring's line breaks in command lists, so they broke
    mid-sentence at every width. Its ``--help`` shows each later paragraph as running text
    too (they broke the same way: 'stops at the' / 'first hold or wait' at 80 columns)."""
    help_text = inspect.cleandoc(command.help or "")
    first = help_text.split("\n\n")[0]
    if command.short_help is None and first and not first.startswith("\b"):
        command.short_help = " ".join(first.split())
    if help_text:
        command.help = "\n\n".join(_running(p) for p in help_text.split("\n\n"))
    for sub in getattr(command, "commands", {}).values():
        _one_line_help(sub)


def _running(paragraph: str) -> str:
    """A help paragraph as one line, unless it is laid out on purpose (``\\b`` first, or a
    list or an indented block: a line after the first starts with a space, '-' or '*')."""
    lines = paragraph.split("\n")
    if paragraph.startswith("\b") or any(line[:1] in (" ", "-", "*") for line in lines[1:]):
        return paragraph
    return " ".join(lines)


app = typer.Typer(
    name="carebound",
    cls=CareboundGroup,
    help="Bounded agents for healthcare operations: run scenarios and cases, work the review "
    "inbox, read the audit trail.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"carebound {version('carebound')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="working|scenarios",
            help="Which store of the server to use: 'working' (real runs and the review "
            "inbox; every command's default but 'run SCENARIO') or 'scenarios' (where scenario "
            "runs go by default).",
        ),
    ] = None,
) -> None:
    """Bounded agents for healthcare operations: run scenarios and cases, work the review
    inbox, read the audit trail."""
    from carebound.cli._session import choose_store

    choose_store(store)


_run.register(app)
_runs.register(app)
_manage.register(app)
_review.register(app)
_login.register(app)
_audit.register(app)
_report.register(app)
_server.register(app)
_web.register(app)
_eval.register(app)
_agents.register(app)


def main() -> None:
    """Run the carebound command line."""
    app(prog_name="carebound")
