"""``carebound audit``: a run's audit trail, and whether its hash chain holds."""

from __future__ import annotations

from typing import Annotated

import typer

from carebound.cli._errors import ExitCode
from carebound.cli._session import open_runner, print_json, stdout


def audit(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run id (see 'carebound runs').")
    ],
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Check the hash chain; exit 1 if it does not hold."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.")
    ] = False,
) -> None:
    """A run's audit trail: who did what, when, with what outcome (oldest first)."""
    from carebound._phi import PhiPolicy

    runner = open_runner()
    events = runner.audit(run_id)
    result = runner.verify(run_id) if verify else None
    policy = PhiPolicy.for_run(runner, run_id)
    events = policy.events(events)
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "events": [e.model_dump(mode="json") for e in events],
                "verify": result.model_dump(mode="json") if result is not None else None,
            }
        )
    else:
        from carebound.cli._render import audit_table, verify_line

        out = stdout()
        out.print(audit_table(events))
        if result is not None:
            out.print(verify_line(run_id, result))
    if result is not None and not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the app."""
    app.command("audit")(audit)
