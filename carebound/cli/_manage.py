"""``carebound cancel``, ``carebound purge`` and ``carebound verify-archive``: run management.

``runs`` (in ``_runs``) searches; these change what is stored. A cancel is audited with its
reason; a purge archives each ended run's audit chain (verified, signed) before it deletes the
run's keys, and ``verify-archive`` checks such an archive later.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from carebound.cli._errors import CliInputError
from carebound.cli._session import JsonOpt, open_reader, open_runner, print_json, stdout
from carebound.state.retention import PURGE_MAX_DAYS
from carebound.state.run_search import RunFilter


def day_start(value: str | None, option: str) -> datetime | None:
    """``value`` (YYYY-MM-DD) as the start of that day in UTC; a clear usage error if not."""
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise CliInputError(
            f"{option} {value!r} is not a date", hint="give it as YYYY-MM-DD, e.g. 2026-03-02"
        ) from None


def run_filter(
    *,
    status: str | None,
    agent: str | None,
    requester: str | None,
    patient: str | None,
    since: str | None,
    until: str | None,
) -> RunFilter:
    """The search the ``runs`` options ask for (dates as days, UTC)."""
    from carebound._principal import normalize_reviewer_id

    if patient is not None and not patient.startswith("Patient/"):
        raise CliInputError(
            f"--patient {patient!r} is not a patient reference", hint="give it as Patient/ID"
        )
    return RunFilter(
        status=status,
        agent=agent,
        requester=normalize_reviewer_id(requester, what="requester") if requester else None,
        patient_ref=patient,
        created_from=day_start(since, "--since"),
        created_to=day_start(until, "--until"),
    )


def cancel(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to stop for good.")],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why (audited; masked like a reviewer's reason; at most 200 characters).",
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who cancels it (recorded in the audit).")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a run: it stops for good, its pending hold leaves the inbox, and the audit
    trail records who cancelled it and why."""
    if not reason.strip():
        raise CliInputError("--reason is empty", hint="say why the run is cancelled")
    view = open_runner().cancel(run_id, by=by, reason=reason)
    if as_json:
        print_json({"run_id": view.run_id, "status": view.status, "by": by})
        return
    stdout().print(f"✓ run {view.run_id} cancelled by {by} (reason in its audit trail)")


def purge(
    *,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=1,
            max=PURGE_MAX_DAYS,
            help="Purge runs that ended more than this many days ago.",
        ),
    ],
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            help="Append each run's audit chain (verified, signed) to this file first "
            "(default: the server's archive, CAREBOUND_ARCHIVE, else purged-runs.jsonl in "
            "CAREBOUND_HOME).",
        ),
    ] = None,
    no_archive: Annotated[
        bool, typer.Option("--no-archive", help="Delete the audit chains without archiving.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the runs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete ended runs (completed, failed, budget exhausted, cancelled, quarantined) past a
    retention period, every key of theirs, after archiving their audit chains; a run whose
    chain does not verify is kept (exit 1).

    The chains go to the archive a purge over the API or the web inbox uses unless --archive
    names another file (or --no-archive)."""
    if archive is not None and no_archive:
        raise CliInputError(
            "--archive and --no-archive contradict each other",
            hint="give one: --archive FILE, or --no-archive to delete the chains unarchived",
        )
    if archive is None and not no_archive:
        from carebound.store import StoreSettings

        archive = StoreSettings.from_env().archive_file  # the API's and the web's archive
        if not dry_run:
            archive.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    runner = open_runner()
    cutoff = runner.clock.now() - timedelta(days=older_than)
    report = runner.purge(cutoff, archive=archive, dry_run=dry_run)
    if as_json:
        print_json(report.summary())
    else:
        out = stdout()
        verb = "would purge" if dry_run else "purged"
        out.print(f"{verb} {len(report.purged)} runs that ended before {cutoff:%Y-%m-%d %H:%M} UTC")
        for run_id in report.purged:
            out.print(f"  {run_id}")
        if report.purged and report.archive is not None:
            where = "would go" if dry_run else "went"
            out.print(f"their audit chains {where} to {report.archive}", soft_wrap=True)
        for run_id, problems in report.refused.items():
            out.print(f"kept {run_id}: its audit chain does not verify ({problems[0]})")
    if report.refused:
        raise typer.Exit(1)


def verify_archive(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="An archive 'purge' wrote.")],
    as_json: JsonOpt = False,
) -> None:
    """Check an archive of purged runs' audit chains: every line's signature and link, and
    each chain in it; exit 1 when anything fails."""
    from carebound.audit import verify_archive

    results = verify_archive(path, open_reader().audit_log.keyring)
    ok = all(r.ok for r in results.values())
    if as_json:
        print_json({"ok": ok, "runs": {k: v.model_dump(mode="json") for k, v in results.items()}})
    else:
        out = stdout()
        for run_id, result in results.items():
            mark = "✓" if result.ok else "✗"
            out.print(f"{mark} {run_id}: {result.count} events" + "".join(
                f"\n    {p}" for p in result.problems
            ))  # fmt: skip
        out.print(f"{len(results)} runs in {path}: " + ("all verify" if ok else "NOT all verify"))
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``cancel``, ``purge`` and ``verify-archive`` to the app."""
    app.command("cancel")(cancel)
    app.command("purge")(purge)
    app.command("verify-archive")(verify_archive)
