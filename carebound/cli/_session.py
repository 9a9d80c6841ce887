"""What every command shares: the store, the runner, the key prefix, and the two outputs.

stdout carries the result only (a table, or exactly one JSON document with ``--json``);
everything else (the store announcement, progress, errors) goes to stderr.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import redis
    from rich.console import Console

    from carebound._phi import PhiPolicy
    from carebound.cli._reader import StoreReader
    from carebound.engine.runner import Runner

PREFIX_VAR = "CAREBOUND_PREFIX"
"""Key prefix of every Redis key carebound writes (default ``cb``); tests use it to isolate."""


def key_prefix() -> str:
    """The key prefix in use: ``CAREBOUND_PREFIX`` or ``cb``."""
    from carebound.state.keys import DEFAULT_PREFIX

    return os.environ.get(PREFIX_VAR, "").strip() or DEFAULT_PREFIX


def announce(text: str) -> None:
    """Say once, dim, on stderr which store is in use."""
    from carebound.cli._terminal import terminal_safe

    typer.secho(terminal_safe(text), err=True, dim=True)


def open_client() -> redis.Redis:
    """A client for the run store (the embedded server, or ``CAREBOUND_REDIS_URL``)."""
    from carebound.store import connect

    return connect(announce=announce).client()


def open_runner() -> Runner:
    """A runner on the run store, with the key prefix in use."""
    from carebound.engine.runner import Runner

    return Runner(open_client(), prefix=key_prefix())


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
