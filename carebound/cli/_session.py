"""What every command shares: the store, the runner, the key prefix, and the two outputs.

stdout carries the result only (a table, or exactly one JSON document with ``--json``);
everything else (the store announcement, progress, errors) goes to stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from carebound._errors import echo_id

if TYPE_CHECKING:
    import redis
    from rich.console import Console

    from carebound._phi import PhiPolicy
    from carebound.cli._reader import StoreReader
    from carebound.engine.runner import Runner

PREFIX_VAR = "CAREBOUND_PREFIX"
"""Key prefix of every Redis key carebound writes (default ``cb``); tests use it to isolate."""


STORES = ("working", "scenarios")
"""The two namespaces of one Redis: ``working`` (real runs, the inbox reviewers work) and
``scenarios`` (scenario runs, on their virtual clocks, kept apart so their holds never show in
the working inbox and the worker never fires their timers)."""
SCENARIOS_SUFFIX = "-scenarios"
"""The scenarios store's key prefix is the working prefix with this suffix (``cb-scenarios``)."""

_chosen: list[str] = []
"""The store ``carebound --store NAME`` chose for this process (empty: each command's own)."""


def choose_store(name: str | None) -> None:
    """Use store ``name`` (one of :data:`STORES`) for this command, whatever its default."""
    from carebound.cli._errors import CliInputError

    if name is None:
        _chosen.clear()  # each command line chooses afresh (tests run several in a process)
        return
    if name not in STORES:
        raise CliInputError(
            f"unknown store {echo_id(name)}", hint=f"use one of: {', '.join(STORES)}"
        )
    _chosen[:] = [name]


STORE_VAR = "CAREBOUND_STORE"
"""A store every command uses unless ``--store`` says otherwise (tests set ``working``)."""


def store_name(default: str = "working") -> str:
    """The store this command uses: the one ``--store`` chose, else ``CAREBOUND_STORE``, else
    ``default``."""
    if _chosen:
        return _chosen[0]
    fixed = os.environ.get(STORE_VAR, "").strip()
    return fixed if fixed in STORES else default


def key_prefix(default: str = "working") -> str:
    """The key prefix in use: ``CAREBOUND_PREFIX`` (or ``cb``) for the working store, with
    ``-scenarios`` after it for the scenarios store (see :data:`STORES`); ``default`` is the
    command's store unless ``--store`` chose one."""
    from carebound.state.keys import DEFAULT_PREFIX

    base = os.environ.get(PREFIX_VAR, "").strip() or DEFAULT_PREFIX
    return base + SCENARIOS_SUFFIX if store_name(default) == "scenarios" else base


def announce(text: str) -> None:
    """Say once, dim, on stderr which store is in use."""
    from carebound.cli._terminal import terminal_safe

    typer.secho(terminal_safe(text), err=True, dim=True)


def open_client() -> redis.Redis:
    """A client for the run store (the embedded server, or ``CAREBOUND_REDIS_URL``)."""
    from carebound.store import connect

    return connect(announce=announce).client()


DRIVE_VAR = "CAREBOUND_DRIVE"
"""Who drives a woken run: ``inline`` (the process that woke it; the default) or ``queue``
(the worker pool, ``carebound worker``)."""


def drive_mode() -> Literal["inline", "queue"]:
    """``CAREBOUND_DRIVE`` (``inline`` or ``queue``); anything else is a usage error."""
    from carebound.cli._errors import CliInputError

    value = os.environ.get(DRIVE_VAR, "").strip().lower() or "inline"
    if value == "inline":
        return "inline"
    if value == "queue":
        return "queue"
    raise CliInputError(
        f"{DRIVE_VAR}={value!r} is not a drive mode",
        hint=f"set {DRIVE_VAR} to 'inline' (drive in this process) or 'queue' (the workers do)",
    )


def open_runner(
    *,
    drive: Literal["inline", "queue"] | None = None,
    lease_ttl_ms: int = 30_000,
    connectors: Path | None = None,
) -> Runner:
    """A runner on the run store, with the key prefix in use, the drive mode of
    ``CAREBOUND_DRIVE`` (unless ``drive`` is given) and the connectors named (None:
    ``CAREBOUND_CONNECTORS``'s file, else the simulator)."""
    from carebound.engine.runner import Runner

    mode = drive or drive_mode()
    return Runner(
        open_client(), prefix=key_prefix(), drive=mode, lease_ttl_ms=lease_ttl_ms,
        connectors=connectors, retention_days=retention_days(),
    )  # fmt: skip


def retention_days() -> float:
    """``CAREBOUND_RETENTION_DAYS`` as days (0: keep ended runs for ever); a value that is not
    a number of days is a usage error."""
    from carebound.cli._errors import CliInputError
    from carebound.state.retention import RETENTION_VAR, retention_seconds

    try:
        return retention_seconds() / 86400
    except ValueError as exc:
        raise CliInputError(
            str(exc).split(":")[0], hint=f"set {RETENTION_VAR} to a number of days, or 0"
        ) from None


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
"""The ``--json`` option every command that prints data takes."""

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Chat model for AI assist, provider:model (e.g. ollama:llama3.1); overrides "
        "CAREBOUND_MODEL. Needs carebound[models] and the provider's langchain package.",
        show_default=False,
    ),
]


def use_model(name: str | None) -> None:
    """Make ``--model NAME`` the default chat model of the Runners this command builds (as
    ``CAREBOUND_MODEL`` would); a name that cannot be loaded stops here with a clear error."""
    if name is None:
        return
    from carebound.assist import ENV_MODEL, load_model

    load_model(name)  # ModelConfigError: what to install, or how to spell the name
    os.environ[ENV_MODEL] = name


ConnectorsOpt = Annotated[
    Path | None,
    typer.Option(
        "--connectors",
        help="Connectors file (TOML) naming the real EHR, payer and office systems "
        "(default: the file CAREBOUND_CONNECTORS names, else the simulator).",
        dir_okay=False,
        show_default=False,
    ),
]


def real_connectors(connectors: Path | None) -> bool:
    """Whether runs reach real systems (a connectors file is named), not the simulator."""
    from carebound.tools.connectors.config import configured_connectors_file

    return connectors is not None or configured_connectors_file() is not None


def open_reader() -> StoreReader:
    """The run store for a command that only reads: no Runner, no agents, no LangGraph."""
    from carebound.cli._reader import StoreReader

    return StoreReader(open_client(), prefix=key_prefix())


def phi_policy(reader: StoreReader, run_id: str, agent: str) -> PhiPolicy:
    """The PHI policy of run ``run_id``: the table it pinned at start, or for a run started
    before runs pinned one, the policy of ``agent`` as a Runner knows it (slower: it loads the
    agents)."""
    policy = reader.phi_policy(run_id)
    if policy is None:
        from carebound._phi import PhiPolicy

        policy = PhiPolicy.for_agent(open_runner(), agent)
    return policy


def print_json(data: Any) -> None:
    """Print one JSON document on stdout (control characters escaped: inert on a terminal)."""
    from carebound.cli._terminal import safe_json_text

    typer.echo(safe_json_text(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


def stdout() -> Console:
    """A rich console on stdout (width from the terminal, or ``COLUMNS``) that prints no
    terminal control from the text it is given (see ``_terminal``)."""
    from carebound.cli._terminal import SafeConsole

    return SafeConsole(highlight=False, soft_wrap=False)


def stderr() -> Console:
    """A rich console on stderr, for progress and notes (terminal control stripped)."""
    from carebound.cli._terminal import SafeConsole

    return SafeConsole(stderr=True, highlight=False)
