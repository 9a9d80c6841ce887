"""Exit codes of the command line, and the one place errors become a message and a code.

Every command runs inside :func:`report_error`'s reach (see ``_app.CareboundGroup``): a
:class:`~carebound.CareboundError` or a Redis error prints ``error: ...`` and ``hint: ...`` on
stderr and exits with the code below, never with a traceback.
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum

from carebound._errors import (
    AlreadyDecidedError,
    CareboundError,
    DecisionRefusedError,
    LeaseLostError,
    NotFoundError,
    RunStateError,
    StoreUnavailableError,
)

DEBUG_VAR = "CAREBOUND_DEBUG"
"""Set to 1 to print the traceback of an unexpected error (a bug) as well."""


class ExitCode(IntEnum):
    """What a carebound command's exit status means."""

    OK = 0
    FAILED = 1
    """A scenario's expectations were not met, a case run failed (or ran out of budget), or
    an audit chain is broken."""
    BAD_INPUT = 2
    """Bad input or usage: a malformed file, an unknown agent or pack, a bad option value."""
    REFUSED = 3
    """A decision was refused (role, own run, stale, edit beyond grant) or the run cannot do
    that now."""
    ALREADY_DECIDED = 4
    """Someone else decided the approval first."""
    NOT_FOUND = 5
    """No run or approval with that id."""
    STORE_UNAVAILABLE = 6
    """The run store (Redis, Valkey, the embedded server) cannot be reached."""
    INTERNAL = 70
    """An unexpected error: a bug in carebound."""


EXIT_CODES_HELP = """Exit codes:
  0  ok
  1  scenario expectations not met, case run failed, or audit chain broken
  2  bad input or usage (malformed file, unknown agent or pack, bad option
     value, busy port)
  3  decision refused (role, own run, stale, edit beyond grant), or what
     the run's state does not allow now (cancel an ended run)
  4  already decided by someone else
  5  run or approval not found
  6  store unreachable
  70 internal error (a bug: CAREBOUND_DEBUG=1 prints the traceback)

Environment:
  CAREBOUND_REDIS_URL  external Redis/Valkey (default: the embedded server)
  CAREBOUND_HOME       the embedded server's data directory
                       (default: the user data directory)
  CAREBOUND_PREFIX     prefix of every Redis key (default cb)
  CAREBOUND_AUDIT_KEY  audit signing key ID:SECRET
                       (default: CAREBOUND_HOME/audit.key)
  CAREBOUND_AUDIT_KEYS older audit keys that still verify: ID:SECRET,...
  CAREBOUND_TOKEN      personal token (else the one from 'carebound login')
  CAREBOUND_RETENTION_DAYS  days an ended run's keys are kept
                       (default 30; 0: for ever)
  CAREBOUND_ARCHIVE    where a purge (CLI, web, API) archives audit chains
                       (default: CAREBOUND_HOME/purged-runs.jsonl)
  CAREBOUND_UNAUTHENTICATED=1  development mode (decisions unauthenticated)"""


class CliInputError(CareboundError):
    """A command line value that cannot be used (exit code 2)."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code an error maps to."""
    import redis
    from pydantic import ValidationError

    if isinstance(exc, AlreadyDecidedError):
        return ExitCode.ALREADY_DECIDED
    if isinstance(exc, DecisionRefusedError | RunStateError | LeaseLostError):
        return ExitCode.REFUSED
    if isinstance(exc, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, StoreUnavailableError | redis.RedisError):
        return ExitCode.STORE_UNAVAILABLE
    if isinstance(exc, CareboundError | ValidationError | OSError):
        return ExitCode.BAD_INPUT
    return ExitCode.INTERNAL


def describe(exc: BaseException) -> tuple[str, str | None]:
    """The ``error:`` and ``hint:`` lines for an error."""
    import redis
    from pydantic import ValidationError

    if isinstance(exc, CareboundError):
        return exc.message, exc.hint
    if isinstance(exc, redis.RedisError):
        return (
            f"the run store failed: {type(exc).__name__}: {exc}",
            "check that the server is running and reachable (CAREBOUND_REDIS_URL, or "
            "'carebound server status' for the embedded one), then run the command again",
        )
    if isinstance(exc, ValidationError):
        from carebound.guardrails import format_validation_error

        return f"invalid {exc.title}:\n{format_validation_error(exc)}", None
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc}", None
    # An unexpected error's message may quote the data it failed on (a patient's name, a
    # document's text): only its type is shown; the traceback, message included, is for
    # whoever runs with CAREBOUND_DEBUG=1.
    return (
        f"unexpected {type(exc).__name__} (its message is not shown: it may hold patient data)",
        f"this is a bug in carebound: run again with {DEBUG_VAR}=1 for the traceback, and "
        "report it",
    )


JSON_FLAG = "--json"
"""The option that asks a command for one JSON document on stdout (a failure too)."""


def wants_json(args: list[str]) -> bool:
    """Whether a command line asks for JSON (``--json`` before any ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    return JSON_FLAG in args[:end]


def error_document(
    message: str, hint: str | None, exit_code: int, code: str
) -> dict[str, dict[str, str | int | None]]:
    """What a ``--json`` command prints on stdout when it fails: ``{"error": {"code",
    "message", "hint", "exit_code"}}`` (``code``: the error's stable code, see
    :mod:`carebound._errors`; ``usage`` for a bad command line)."""
    return {"error": {"code": code, "message": message, "hint": hint, "exit_code": exit_code}}


def print_error_document(document: dict[str, dict[str, str | int | None]]) -> None:
    """Print an :func:`error_document` on stdout."""
    import json

    import typer

    from carebound.cli._terminal import safe_json_text

    typer.echo(safe_json_text(json.dumps(document, indent=2, ensure_ascii=False)))


def report_error(exc: BaseException, *, as_json: bool = False) -> ExitCode:
    """Print ``error:`` / ``hint:`` on stderr (with ``as_json``, the :func:`error_document`
    on stdout too) and return the exit code for ``exc``."""
    import typer

    from carebound.cli._terminal import terminal_safe

    code = exit_code_for(exc)
    message, hint = describe(exc)
    if as_json:
        kind = exc.code if isinstance(exc, CareboundError) else _kind(exc, code)
        print_error_document(error_document(message, hint, int(code), kind))
    message, hint = terminal_safe(message), terminal_safe(hint) if hint else hint
    typer.secho(f"error: {message}", err=True, fg="red")
    if hint:
        typer.secho(f"hint: {hint}", err=True, fg="yellow")
    if code is ExitCode.INTERNAL and os.environ.get(DEBUG_VAR, "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return code


def _kind(exc: BaseException, code: ExitCode) -> str:
    """The stable code of an error that is not a carebound error."""
    if code is ExitCode.STORE_UNAVAILABLE:
        return "store_unavailable"
    if code is ExitCode.INTERNAL:
        return "internal"
    return "bad_input"
