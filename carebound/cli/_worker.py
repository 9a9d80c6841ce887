"""``carebound worker``: a process of the worker pool (``--concurrency N``), or the sweeper of
an inline deployment; ``worker status|dead|retry`` for operators."""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carebound.cli._heap import freeze_startup_heap
from carebound.cli._session import (
    ConnectorsOpt,
    JsonOpt,
    ModelOpt,
    open_runner,
    print_json,
    stderr,
    stdout,
    use_model,
)
from carebound.cli._upkeep import Upkeep

if TYPE_CHECKING:
    from carebound.engine.runner import Runner


worker_app = typer.Typer(
    name="worker",
    help="Drive runs from the work queue (a pool of workers), fire timers, recover runs.",
    invoke_without_command=True,
)


@worker_app.callback()
def worker(
    ctx: typer.Context,
    *,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=256,
            help="Join the worker pool with this many slots (runs driven at once). Default "
            "with CAREBOUND_DRIVE=queue: 8; without either, the worker only sweeps.",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One sweep, print what it did, exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.0, help="Seconds between sweeps.")
    ] = 5.0,
    sweeps: Annotated[
        int, typer.Option("--sweeps", min=0, help="Stop after this many sweeps (0: until Ctrl-C).")
    ] = 0,
    lease_ttl: Annotated[
        float,
        typer.Option("--lease-ttl", min=0.5, help="Seconds a run's lease lasts unrenewed."),
    ] = 30.0,
    reclaim_idle: Annotated[
        float,
        typer.Option(
            "--reclaim-idle",
            min=0.1,
            help="Seconds a message may stay pending before it is "
            "taken over from its (dead) worker.",
        ),
    ] = 30.0,
    max_tries: Annotated[
        int, typer.Option("--max-tries", min=1, help="Begun more often: a dead letter.")
    ] = 5,
    connectors: ConnectorsOpt = None,
    model: ModelOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics (process figures, the pool) on this port.",
        ),
    ] = None,
    metrics_addr: Annotated[
        str,
        typer.Option(
            "--metrics-addr",
            help="Address the metrics port listens on (0.0.0.0: every interface, for a "
            "Prometheus on another host; it answers without authentication).",
        ),
    ] = "127.0.0.1",
    as_json: JsonOpt = False,
) -> None:
    """Drive runs from the work queue with --concurrency slots until SIGTERM or Ctrl-C (which
    drain: each slot finishes its drive, its lease is released, the rest is left for the other
    workers); it also fires due timers, expires or escalates overdue holds and re-enqueues
    runs a dead worker left. Without --concurrency (and CAREBOUND_DRIVE=queue) it only sweeps:
    timers, deadlines and recovery, driven in this process, every --interval seconds."""
    if ctx.invoked_subcommand is not None:
        return
    from carebound.cli._session import drive_mode

    use_model(model)
    if concurrency is None and drive_mode() == "queue" and not once and not sweeps:
        concurrency = 8
    if concurrency is None:
        _sweeper(
            once=once, interval=interval, sweeps=sweeps, as_json=as_json, connectors=connectors,
            metrics_port=metrics_port, metrics_addr=metrics_addr,
        )  # fmt: skip
        return
    from carebound.engine.pool import PoolSettings

    settings = PoolSettings(
        concurrency=concurrency,
        reclaim_idle_ms=int(reclaim_idle * 1000),
        recover_after_ms=int(lease_ttl * 2000),
        sweep_interval_s=interval,
        max_tries=max_tries,
    )
    runner = open_runner(drive="queue", lease_ttl_ms=int(lease_ttl * 1000), connectors=connectors)
    upkeep = Upkeep(runner, metrics_port=metrics_port, metrics_addr=metrics_addr, pool=True)
    settings.upkeep = upkeep
    settings.on_ready = upkeep.serve_metrics
    pool = runner.worker_pool(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pool.stop())
    freeze_startup_heap()
    if not as_json:
        stderr().print(
            f"worker {pool.consumer}: {concurrency} slots, connectors "
            f"{_connectors_of(runner)}; SIGTERM or Ctrl-C drains",
            style="dim",
        )
    report = pool.run()
    upkeep.stop()
    if as_json:
        print_json({**dataclasses.asdict(report), "connectors": _connectors_of(runner)})
        return
    stdout().print(
        f"worker {report.consumer} stopped: {report.drives} drives, {report.busy} busy, "
        f"{report.failed} failed, {report.reclaimed} reclaimed, "
        f"{report.dead_lettered} dead-lettered"
    )


def _connectors_of(runner: Runner) -> str:
    """Which systems the runner's runs reach, as runs record it (``simulator``, or
    ``config:<digest>`` for a connectors file; ``any`` for a factory that names none): the
    identity ``carebound approve`` and ``status`` show, so an operator can match them."""
    from carebound.tools.connectors import connectors_identity

    return connectors_identity(runner.connectors) or "any"


def _sweeper(
    *,
    once: bool,
    interval: float,
    sweeps: int,
    as_json: bool,
    connectors: Path | None,
    metrics_port: int | None,
    metrics_addr: str,
) -> None:
    """Sweep in this process (an inline deployment): timers, deadlines, recovery."""
    from carebound.engine.results import SweepReport

    runner = open_runner(connectors=connectors)
    upkeep = Upkeep(runner, metrics_port=metrics_port, metrics_addr=metrics_addr, pool=False)
    upkeep.serve_metrics()
    # One run that cannot be driven never stops the worker: it is counted, retried by later
    # sweeps and quarantined when it keeps failing (see Runner.recover_runs).
    first = runner.recover_runs()
    recovered = first.recovered
    if once:
        sweeps = 1
    totals = SweepReport(runs_failed=len(first.failed), runs_quarantined=len(first.quarantined))
    done = 0
    note = stderr()
    if sweeps != 1:  # a single sweep ends before a full collection would come
        freeze_startup_heap()
    connectors_in_use = _connectors_of(runner)
    if not as_json:
        note.print(f"worker: sweeping, connectors {connectors_in_use}", style="dim")
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
            upkeep()
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
    upkeep.stop()
    if as_json:
        print_json({
            **totals.model_dump(mode="json"), "sweeps": done, "recovered": recovered,
            "connectors": connectors_in_use,
        })  # fmt: skip
        return
    from carebound.cli._render_server import sweep_view

    if once:
        stdout().print(sweep_view(totals, recovered))
    else:
        stdout().print(f"{done} sweeps")
        stdout().print(sweep_view(totals, recovered))


@worker_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """The pool's numbers: queue depth, oldest pending age, reclaimed and dead-lettered
    counts, each live worker's busy and free slots."""
    stats = open_runner().work.stats()
    data: dict[str, Any] = dataclasses.asdict(stats)
    if as_json:
        print_json(data)
        return
    out = stdout()
    oldest = "-" if stats.oldest_age_s is None else f"{stats.oldest_age_s:.1f}s"
    out.print(
        f"queue depth {stats.depth} ({stats.waiting} waiting, {stats.pending} in progress), "
        f"oldest {oldest}"
    )
    out.print(
        f"enqueued {stats.enqueued}, coalesced {stats.coalesced}, done {stats.done}, busy "
        f"{stats.busy}, reclaimed {stats.reclaimed}, dead-lettered {stats.dead_lettered} "
        f"({stats.dead_letters} waiting), retried {stats.retried}"
    )
    if not stats.workers:
        out.print("no live workers")
    for w in stats.workers:
        out.print(
            f"  {w['consumer']}: {w['busy']} busy, {w['free']} free of {w['slots']} slots"
            + (" (draining)" if w.get("draining") else "")
        )


@worker_app.command("dead")
def dead(as_json: JsonOpt = False) -> None:
    """The dead letters: runs whose drive kept failing, waiting for an operator."""
    letters = open_runner().work.dead_letters(limit=1000)
    if as_json:
        print_json([dataclasses.asdict(d) for d in letters])
        return
    if not letters:
        stdout().print("no dead letters")
    for d in letters:
        stdout().print(f"{d.id}  run {d.run_id}  tries {d.tries}  {d.reason}")


@worker_app.command("retry")
def retry(
    ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Dead letter ids or run ids ('carebound worker dead').", show_default=False
        ),
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every dead letter.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Enqueue dead letters' runs again (a quarantined run is released first)."""
    from carebound.cli._errors import CliInputError

    if not ids and not retry_all:
        raise CliInputError(
            "name the dead letters to retry, or pass --all",
            hint="list them with 'carebound worker dead'",
        )
    runner = open_runner()
    wanted = set(ids or [])
    letters = [
        d
        for d in runner.work.dead_letters(limit=100_000)
        if retry_all or d.id in wanted or d.run_id in wanted
    ]
    unknown = wanted - {d.id for d in letters} - {d.run_id for d in letters}
    if unknown:
        raise CliInputError(
            f"no dead letter {', '.join(sorted(unknown))}",
            hint="list them with 'carebound worker dead'",
        )
    retried = [d.run_id for d in letters if runner.retry_dead_letter(d)]
    if as_json:
        print_json({"retried": retried})
        return
    stdout().print(
        f"retried {len(retried)} run(s)" + (f": {', '.join(retried)}" if retried else "")
    )
