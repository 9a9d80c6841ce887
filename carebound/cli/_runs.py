"""``carebound runs`` and ``carebound status``: which runs exist, and where one of them is."""

from __future__ import annotations

from typing import Annotated, Any, get_args

import typer

from carebound.cli._errors import CliInputError
from carebound.cli._manage import run_filter
from carebound.cli._reveal import RevealOpt, ViewerOpt, reveal_run
from carebound.cli._session import JsonOpt, open_reader, open_runner, print_json, stdout
from carebound.state.runs import RunStatus

STATUSES: tuple[str, ...] = get_args(RunStatus)
"""Every run status (the run store's ``RunStatus``)."""


def runs(
    *,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only runs in this status: {', '.join(STATUSES)}."),
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only runs of this agent.")] = None,
    requester: Annotated[
        str | None, typer.Option("--requester", help="Only runs started for this person.")
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option("--patient", help="Only runs on this patient (a reference: Patient/ID)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only runs started on or after this day.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only runs started before this day.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many runs.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List and search runs, newest first (by status, agent, requester, patient, start day)."""
    if status is not None and status not in STATUSES:
        raise CliInputError(
            f"unknown run status {status!r}", hint=f"use one of: {', '.join(STATUSES)}"
        )
    where = run_filter(
        status=status, agent=agent, requester=requester, patient=patient, since=since, until=until
    )
    reader = open_reader()
    page = reader.search_runs(where, limit=limit, offset=offset)
    records = page.runs
    if as_json:
        print_json(
            {"runs": [r.model_dump(mode="json") for r in records], "next_offset": page.next_offset}
        )
        return
    from carebound.cli._render_runs import runs_table

    stdout().print(runs_table(records, reader.clock.now()))


def status(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run id (see 'carebound runs').")
    ],
    reveal: RevealOpt = False,
    reviewer: ViewerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where a run is: status, summary, steps, the hold it waits on, effects, findings.
    Mismatch values are masked unless --reveal (audited)."""
    from carebound._phi import mask_findings, mask_report
    from carebound._report import run_report

    if reveal:
        runner = open_runner()
        view = runner.get(run_id)
        reveal_run(runner, run_id, reviewer, what="run")
        now = runner.clock.now()
    else:
        reader = open_reader()  # a masked look needs no Runner (see _reader)
        view = reader.run_view(run_id) or open_runner().get(run_id)
        now = reader.clock.now()
    report = run_report(view)
    if not reveal:
        report = mask_report(report)
        view = view.model_copy(update={"findings": mask_findings(view.findings)})
    if as_json:
        pending: dict[str, Any] | None = None
        if view.pending is not None and view.pending.status == "pending":
            request = view.pending.request
            pending = {
                "approval_id": request.approval_id,
                "tool": request.tool,
                "risk": request.risk,
                "required_role": view.pending.required_role,
                "deadline": view.pending.deadline.isoformat(),
                "summary": request.packet.summary,
            }
        print_json(
            {
                "record": view.record.model_dump(mode="json"),
                "steps": view.steps,
                "pending": pending,
                "effects": [e.model_dump(mode="json", exclude={"result"}) for e in view.effects],
                "findings": view.findings,
                "report": report.model_dump(mode="json"),
            }
        )
        return
    from carebound.cli._render_runs import run_status

    stdout().print(run_status(view, report, now))


def register(app: typer.Typer) -> None:
    """Add ``runs`` and ``status`` to the app."""
    app.command("runs")(runs)
    app.command("status")(status)
