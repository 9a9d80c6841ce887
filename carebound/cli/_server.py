"""``carebound server status|stop`` (the embedded store) and ``carebound worker`` (timers,
deadlines and recovery)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from carebound.cli._session import open_runner, print_json, stderr, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

server_app = typer.Typer(
    name="server",
    help="The embedded store (a Valkey server kept in CAREBOUND_HOME).",
    no_args_is_help=True,
)


def _external_url() -> str | None:
    from carebound.store import StoreSettings, mask_url

    url = StoreSettings.from_env().redis_url
    return mask_url(url) if url else None


@server_app.command("status")
def server_status(as_json: JsonOpt = False) -> None:
    """Where the embedded server is: running or not, pid, socket or port, data dir, size."""
    from carebound.store import StoreSettings
    from carebound.store import server_status as read_status

    settings = StoreSettings.from_env()
    status = read_status(settings)
    external = _external_url()
    if as_json:
        embedded: dict[str, Any] | None = None
        if status is not None:
            embedded = {
                "running": status.running,
                "pid": status.pid,
                "url": status.url,
                "socket": str(status.socket) if status.socket is not None else None,
                "port": status.port,
                "data_dir": str(status.data_dir),
                "data_bytes": status.data_bytes,
                "version": status.version,
                "binary": status.binary,
            }
        print_json({"data_dir": str(settings.home), "external_url": external, "embedded": embedded})
        return
    from carebound.cli._render_server import server_view

    stdout().print(server_view(status, settings.home, external))


@server_app.command("stop")
def server_stop(as_json: JsonOpt = False) -> None:
    """Shut the embedded server down cleanly (it writes its data out first)."""
    from carebound.store import StoreSettings, stop_server

    settings = StoreSettings.from_env()
    stopped = stop_server(settings)
    if as_json:
        print_json({"stopped": stopped, "data_dir": str(settings.home)})
        return
    if stopped:
        typer.echo(f"stopped the embedded server in {settings.home}")
    else:
        typer.echo(f"no embedded server running in {settings.home}")


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="One sweep, print what it did, exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.0, help="Seconds between sweeps.")
    ] = 5.0,
    sweeps: Annotated[
        int, typer.Option("--sweeps", min=0, help="Stop after this many sweeps (0: until Ctrl-C).")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fire due timers, expire or escalate overdue holds, recover stalled runs.

    Recovers runs a crashed process left half-driven first, then sweeps every --interval
    seconds until Ctrl-C."""
    from carebound.engine.results import SweepReport

    runner = open_runner()
    # One run that cannot be driven never stops the worker: it is counted, retried by later
    # sweeps and quarantined when it keeps failing (see Runner.recover_runs).
    first = runner.recover_runs()
    recovered = first.recovered
    if once:
        sweeps = 1
    totals = SweepReport(runs_failed=len(first.failed), runs_quarantined=len(first.quarantined))
    done = 0
    note = stderr()
    if recovered and not as_json:
        note.print(f"recovered {len(recovered)} run(s): {', '.join(recovered)}", style="dim")
    if first.failed and not as_json:
        note.print(
            f"could not drive {len(first.failed)} run(s): {', '.join(first.failed)} "
            f"({len(first.quarantined)} quarantined); see 'carebound runs'",
            style="yellow",
        )
    try:
        while True:
            report = runner.sweep()
            done += 1
            for field in SweepReport.model_fields:
                setattr(totals, field, getattr(totals, field) + getattr(report, field))
            if not once and not as_json and report != SweepReport():
                note.print(
                    f"{time.strftime('%H:%M:%S')} sweep {done}: "
                    f"{report.timers_fired} timers fired, {report.holds_expired} holds expired, "
                    f"{report.holds_escalated} escalated, {report.runs_recovered} recovered, "
                    f"{report.runs_failed} failed ({report.runs_quarantined} quarantined)",
                )
            if sweeps and done >= sweeps:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        if not as_json:
            note.print("worker stopped", style="dim")
    if as_json:
        print_json({**totals.model_dump(mode="json"), "sweeps": done, "recovered": recovered})
        return
    from carebound.cli._render_server import sweep_view

    if once:
        stdout().print(sweep_view(totals, recovered))
    else:
        stdout().print(f"{done} sweeps")
        stdout().print(sweep_view(totals, recovered))


def register(app: typer.Typer) -> None:
    """Add ``server`` and ``worker`` to the app."""
    app.add_typer(server_app)
    app.command("worker")(worker)
