"""``--reveal`` for a run's status and audit trail: who may see a run's PHI; the record of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from carebound.engine.runner import Runner

RevealOpt = Annotated[
    bool,
    typer.Option(
        "--reveal",
        help="Show the PHI too: for a reviewer holding the role of one of the run's holds "
        "(recorded in the audit trail).",
    ),
]
ViewerOpt = Annotated[
    str | None,
    typer.Option(
        "--reviewer",
        help="Who reveals the PHI: you, when signed in; needed with --reveal in the development "
        "mode.",
    ),
]


def reveal_run(runner: Runner, run_id: str, reviewer: str | None, *, what: str) -> None:
    """Check that the CLI's principal may see run ``run_id``'s PHI and record the view.

    Raises:
        DecisionRefusedError: not in the directory, or no role of the run's holds (exit 3).
        CredentialRefusedError / CliInputError: nobody signed in and no ``--reviewer``.
    """
    from carebound._phi import hold_roles
    from carebound.cli._credential import cli_principal

    viewer = cli_principal(runner, reviewer, scope="reveal", action="see PHI", flag="--reveal")
    roles = hold_roles(runner, run_id)
    runner.reveal_run(run_id, viewer=viewer.reviewer, roles=roles, via=viewer.via, what=what)
