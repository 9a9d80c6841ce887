"""``carebound audit``: a run's audit trail, whether its chain holds, and signed checkpoints.

``carebound audit RUN_ID`` (the same as ``audit show RUN_ID``) lists a run's trail; ``--verify``
checks its hashes, MACs, head and anchor, and ``--anchors FILE`` also checks it against the
checkpoints ``carebound audit export [RUN_ID] --out FILE`` appended to FILE. ``carebound audit
archive --before DATE --out FILE`` archives, checks, then deletes the chains expired runs left.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carebound.cli._errors import ExitCode
from carebound.cli._group import JsonGroup
from carebound.cli._reveal import RevealOpt, ViewerOpt, reveal_run
from carebound.cli._session import open_reader, open_runner, phi_policy, print_json, stdout

if TYPE_CHECKING:
    from carebound.audit import AuditTrail, VerifyResult
    from carebound.cli._reader import StoreReader
    from carebound.engine.runner import Runner


class _RunOrCommand(JsonGroup):
    """``audit RUN_ID ...`` is ``audit show RUN_ID ...``; ``audit export ...`` exports."""

    def route(self, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            return ["show", *args]
        return args


audit_app = typer.Typer(
    cls=_RunOrCommand,
    name="audit",
    help="A run's audit trail and whether its chain holds (carebound audit RUN_ID [--verify] "
    "[--anchors FILE]), signed checkpoints of runs' chains (carebound audit export), and the "
    "archive of expired runs' chains (carebound audit archive --before DATE --out FILE).",
    no_args_is_help=True,
    add_completion=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


@audit_app.command("show")
def show(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run id (see 'carebound runs').")
    ],
    *,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the chain (hashes, MACs, head, anchor); exit 1 if it does not hold.",
        ),
    ] = False,
    anchors: Annotated[
        Path | None,
        typer.Option(
            "--anchors",
            metavar="FILE",
            help="Also check the chain against the checkpoints 'carebound audit export' "
            "appended to FILE (implies --verify).",
        ),
    ] = None,
    reveal: RevealOpt = False,
    reviewer: ViewerOpt = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="One table row per event (for wide terminals)."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """A run's audit trail: who did what, when, with what outcome (oldest first). Values
    recorded for PHI tools are masked unless --reveal (audited)."""
    reader = None if reveal else open_reader()  # a masked trail needs no Runner (see _reader)
    source: Runner | StoreReader
    revealer: Runner | None = None
    if reader is None:
        source = revealer = open_runner()
        reveal_run(revealer, run_id, reviewer, what="audit")
    else:
        source = reader
    verify = verify or anchors is not None
    # On a Redis Cluster, index the events a crash left out of the global index (and bring
    # the run's anchor up) before the check; nothing to do on a single server.
    reindexed = source.audit_log.repair_index(run_id) if verify else []
    trail, file_problems = _read(source, run_id, anchors)
    result = _with_file_problems(trail.verify, file_problems) if verify else None
    events = trail.events
    if reader is not None:
        events = phi_policy(reader, run_id, _agent_of(reader, run_id, trail)).events(trail.events)
    elif revealer is not None:
        from carebound._phi import revealed_events

        events = revealed_events(revealer, run_id, events)
    if as_json:
        print_json(
            {
                "run_id": run_id,
                "events": [e.model_dump(mode="json") for e in events],
                "verify": result.model_dump(mode="json") if result is not None else None,
                "reindexed": reindexed,
            }
        )
    else:
        from carebound.cli._render_audit import audit_table, verify_line

        out = stdout()
        out.print(audit_table(events, wide=wide))
        if reindexed:
            typer.secho(
                f"note: event(s) {', '.join(map(str, reindexed))} of {run_id} were missing from "
                "the global audit index (a crash on a Redis Cluster); indexed now",
                err=True,
            )
        if result is not None:
            out.print(verify_line(run_id, result))
            if anchors is not None and result.checkpoints == 0:
                typer.secho(f"note: {anchors} holds no checkpoint of {run_id}", err=True)
            elif anchors is not None and result.ok:
                out.print(
                    f"✓ and it holds every one of the {result.checkpoints} checkpoint(s) "
                    f"exported to {anchors}",
                    style="green",
                    markup=False,
                )
        elif len(events) < trail.verify.count:
            typer.secho(
                f"warning: {trail.verify.count - len(events)} audit entries of {run_id} cannot "
                f"be read: run 'carebound audit {run_id} --verify'",
                err=True,
                fg="yellow",
            )
    if result is not None and not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


def _agent_of(reader: StoreReader, run_id: str, trail: AuditTrail) -> str:
    """The run's agent: its record's, or for a run whose keys expired (its chain is kept
    until archived), the one its trail's first event names ('' if none: mask everything)."""
    record = reader.runs.get(run_id)
    if record is not None:
        return record.agent
    created = [e for e in trail.events if e.action == "create" and "agent" in e.detail]
    return str(created[0].detail["agent"]) if created else ""


def _read(
    runner: Runner | StoreReader, run_id: str, anchors: Path | None
) -> tuple[AuditTrail, list[str]]:
    """The run's trail, checked against the anchors file's checkpoints of the run if given,
    and what is wrong with that file."""
    if anchors is None:
        return runner.audit_trail(run_id), []
    from carebound.audit import read_anchors

    found = read_anchors(anchors, runner.audit_log.keyring)
    return runner.audit_trail(run_id, checkpoints=found.of_run(run_id)), found.problems


def _with_file_problems(result: VerifyResult, problems: list[str]) -> VerifyResult:
    if not problems:
        return result
    every = [*result.problems, *problems]
    return result.model_copy(update={"ok": False, "problems": every})


@audit_app.command("export")
def export(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            help="The anchors file to append to (JSON lines; created if missing). Keep it "
            "where writers of the store cannot change it.",
        ),
    ],
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="RUN_ID", help="The run to export (default: every run)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Append a signed checkpoint of each run's audit chain head to FILE.

    A run whose chain is broken is not exported, and the command exits 1.
    """
    from carebound._errors import NotFoundError, echo_id
    from carebound.audit import export_checkpoints

    runner = open_runner()
    if run_id is not None and runner.runs.get(run_id) is None:
        raise NotFoundError(f"no run {echo_id(run_id)}", hint="list runs with 'carebound runs'")
    run_ids = [run_id] if run_id is not None else runner.runs.all_ids()
    report = export_checkpoints(runner.audit_log, run_ids, out, now=runner.clock.now())
    if as_json:
        print_json(
            {
                "out": str(out),
                "written": [c.model_dump(mode="json") for c in report.written],
                "refused": report.refused,
            }
        )
    else:
        out_console = stdout()
        for point in report.written:
            out_console.print(
                f"✓ {point.run_id}: checkpoint at seq {point.seq} ({point.hash[:12]}...)",
                style="green",
                markup=False,
            )
        for refused, problems in report.refused.items():
            out_console.print(
                f"✗ {refused}: not exported, its audit chain is BROKEN", style="bold red"
            )
            for problem in problems:
                out_console.print(f"  - {problem}", style="red", markup=False)
        out_console.print(f"{len(report.written)} checkpoint(s) appended to {out}", markup=False)
    if report.refused:
        raise typer.Exit(int(ExitCode.FAILED))


@audit_app.command("archive")
def archive(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            metavar="DATE",
            help="Archive the chains of runs started before this day (YYYY-MM-DD, UTC) whose "
            "other keys have expired, and trim the global audit index to it.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            help="The archive to append to (JSON lines, signed; the format 'carebound purge "
            "--archive' writes; check it with 'carebound verify-archive FILE').",
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """Archive the audit chains that expired runs left behind, then delete them.

    An ended run's keys expire after the retention period (CAREBOUND_RETENTION_DAYS), but its
    audit chain stays until archived: each chain is verified and appended to FILE, the file is
    checked, and only then are the chains deleted. A chain that does not verify is kept (exit
    1).
    """
    from carebound.cli._manage import day_start
    from carebound.engine.retention import archive_expired

    cutoff = day_start(before, "--before")
    assert cutoff is not None
    report = archive_expired(open_runner(), cutoff, out)
    if as_json:
        print_json(
            {
                "before": cutoff.isoformat(),
                "out": str(out),
                "archived": report.archived,
                "refused": report.refused,
                "keys_deleted": report.keys_deleted,
                "audit_index_trimmed": report.index_trimmed,
            }
        )
    else:
        console = stdout()
        console.print(
            f"archived {len(report.archived)} audit chain(s) of expired runs started before "
            f"{cutoff:%Y-%m-%d} to {out} (checked, then deleted); {report.index_trimmed} "
            "global index entries trimmed",
            markup=False,
        )
        for refused, problems in report.refused.items():
            console.print(f"kept {refused}: its audit chain does not verify ({problems[0]})")
    if report.refused:
        raise typer.Exit(int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    """Add ``audit`` (with ``show`` as its default, ``export`` and ``archive``) to the app."""
    app.add_typer(audit_app)
