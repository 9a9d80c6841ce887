"""``carebound run``: a scenario file, a folder of scenarios, or one agent on one case."""

from __future__ import annotations

import getpass
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carebound._errors import echo_id
from carebound.cli._errors import CliInputError, ExitCode
from carebound.cli._session import (
    ConnectorsOpt,
    JsonOpt,
    ModelOpt,
    key_prefix,
    open_client,
    print_json,
    real_connectors,
    stderr,
    stdout,
    store_name,
    use_model,
)

if TYPE_CHECKING:
    import redis

    from carebound.cli._render_runs import ScenarioRow
    from carebound.scenario import ScenarioResult
    from carebound.tools.connectors import ConnectorsFactory

ENDED_BADLY = frozenset({"failed", "budget_exhausted", "quarantined"})
"""A case run that stops in one of these exits 1: it did not do its job."""
FhirServerOpt = Annotated[
    str | None,
    typer.Option(
        "--fhir-server",
        metavar="URL",
        help="The local FHIR test server (testing/fhir-server): short for a connectors file "
        "with ehr = URL/ehr, payer = URL/payer, office = URL/office. A scenario's world is "
        "seeded there (each scenario run in a namespace of its own) and its office answers "
        "over CDex.",
        show_default=False,
    ),
]


def _default_requester() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "operator"


def run(
    target: Annotated[
        Path | None,
        typer.Argument(
            metavar="[SCENARIO]",
            help="A scenario YAML file, or a folder: every *.yaml in it is run.",
            show_default=False,
        ),
    ] = None,
    *,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Agent to run on --case (e.g. demo).")
    ] = None,
    case: Annotated[
        Path | None,
        typer.Option("--case", help="FHIR Bundle (JSON) of the case.", dir_okay=False),
    ] = None,
    ehr: Annotated[
        Path | None,
        typer.Option(
            "--ehr",
            help="FHIR Bundle seeding the simulated EHR (default: the case; not with real "
            "connectors).",
            dir_okay=False,
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Policy pack: a built-in name or a YAML path."),
    ] = None,
    requester: Annotated[
        str | None,
        typer.Option("--requester", help="Who starts the run (default: your login name)."),
    ] = None,
    connectors: ConnectorsOpt = None,
    fhir_server: FhirServerOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario, every scenario in a folder, or one agent on a case.

    A scenario's expectations decide the exit code (1 if not met). A case run stops at the
    first hold or wait: work it with 'carebound inbox' and 'carebound show'; one that ends
    failed or out of budget exits 1.
    """
    from carebound.cli._session import retention_days
    from carebound.tools.connectors import connectors_factory

    use_model(model)
    retention_days()  # a bad CAREBOUND_RETENTION_DAYS is a usage error before anything runs
    if (target is None) == (agent is None):
        raise CliInputError(
            "give either a scenario (file or folder) or --agent with --case",
            hint="carebound run scenarios/ | carebound run FILE.yaml | "
            "carebound run --agent demo --case bundle.json",
        )
    if fhir_server is not None and connectors is not None:
        raise CliInputError(
            "--fhir-server and --connectors both say where the systems are",
            hint="give one: --fhir-server URL for the local test server, --connectors FILE "
            "for any other",
        )
    factory: ConnectorsFactory
    if fhir_server is not None:
        from carebound.tools.connectors.fhir_world import local_server_connectors

        factory = local_server_connectors(fhir_server)  # a bad URL stops here, once
    else:
        factory = connectors_factory(connectors)  # a bad file stops here, once
    if agent is not None:
        if case is None:
            raise CliInputError("--agent needs --case BUNDLE.json", hint="give the case bundle")
        with _closing(factory):
            status = _run_case(
                agent,
                case,
                ehr=ehr,
                policy=policy,
                requester=requester or _default_requester(),
                real=fhir_server is not None or real_connectors(connectors),
                factory=factory,
                as_json=as_json,
            )
        if status in ENDED_BADLY:
            raise typer.Exit(int(ExitCode.FAILED))
        return
    assert target is not None
    if case is not None or ehr is not None or policy is not None or requester is not None:
        raise CliInputError(
            "--case, --ehr, --policy and --requester go with --agent",
            hint="a scenario file names its own case, policy and requester",
        )
    if not target.is_dir() and not target.is_file():
        raise CliInputError(f"{target}: no such scenario file or folder")
    source = _Systems(factory, fhir_server)
    with _closing(factory):
        if target.is_dir():
            code = _run_folder(target, as_json, source)
        else:
            code = _run_file(target, as_json, source)
    _say_where_scenarios_went()
    raise typer.Exit(int(code))


@contextmanager
def _closing(factory: ConnectorsFactory) -> Iterator[None]:
    """Close the factory's connections at the end (a connectors file's FHIR clients)."""
    try:
        yield
    finally:
        close = getattr(factory, "close", None)
        if callable(close):
            close()


def _say_where_scenarios_went() -> None:
    """Tell (on stderr) where scenario runs are kept when it is not the working store."""
    if store_name("scenarios") != "scenarios":
        return
    typer.secho(
        f"scenario runs are kept in the 'scenarios' store (key prefix "
        f"{key_prefix('scenarios')}), apart from the working inbox: see them with "
        "'carebound --store scenarios runs' (or inbox, show, status, audit)",
        err=True,
        dim=True,
    )


def _run_case(
    agent: str,
    case: Path,
    *,
    ehr: Path | None,
    policy: str | None,
    requester: str,
    real: bool,
    factory: ConnectorsFactory,
    as_json: bool,
) -> str:
    """Run ``agent`` on ``case`` to its first stop; prints the report, returns its status."""
    from carebound.agents import registry

    if ehr is not None and real:
        raise CliInputError(
            "--ehr seeds the simulated EHR; with a connectors file the EHR is the real one",
            hint="leave out --ehr (or --connectors and CAREBOUND_CONNECTORS to simulate)",
        )
    known = sorted(registry())
    if agent not in known:
        raise CliInputError(
            f"unknown agent {echo_id(agent)}", hint=f"known agents: {', '.join(known)}"
        )
    for label, path in (("--case", case), ("--ehr", ehr)):
        if path is not None and not path.is_file():
            raise CliInputError(
                f"{label} {path}: no such file", hint="give a FHIR Bundle JSON file"
            )
    from carebound._phi import mask_report
    from carebound.scenario import run_case

    report = run_case(
        open_client(),
        agent=agent,
        case=case,
        ehr=ehr,
        policy=policy,
        requester=requester,
        prefix=key_prefix(),
        connectors=factory,
    )
    report = mask_report(report)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return report.status
    from carebound.cli._render_runs import report_view

    stdout().print(report_view(report))
    return report.status


@dataclass(frozen=True)
class _Systems:
    """Where a scenario's systems are: the connectors factory, or the local FHIR test server."""

    factory: ConnectorsFactory
    fhir_server: str | None

    def run(self, path: Path, client: redis.Redis) -> ScenarioResult:
        """Run one scenario on these systems (on the test server, in a namespace of its own:
        runs of scenarios sharing a chart never see each other's writes)."""
        from carebound.scenario import run_scenario

        prefix = key_prefix("scenarios")
        if self.fhir_server is None:
            return run_scenario(path, client, prefix=prefix, connectors=self.factory)
        root = f"{self.fhir_server.rstrip('/')}/{path.stem[:40]}-{secrets.token_hex(4)}"
        typer.secho(f"{path.name}: FHIR bases {root}/ehr, /payer, /office", err=True, dim=True)
        return run_scenario(path, client, prefix=prefix, fhir_server=root)


def _run_file(path: Path, as_json: bool, systems: _Systems) -> ExitCode:
    from carebound._phi import mask_report

    result = systems.run(path, open_client())
    report = mask_report(result.report)
    if as_json:
        print_json(report.model_dump(mode="json"))
        from carebound.cli._terminal import terminal_safe

        for failure in result.failures:
            typer.secho(f"expectation not met: {terminal_safe(failure)}", err=True, fg="red")
    else:
        from rich.text import Text

        from carebound.cli._render_runs import report_view

        out = stdout()
        out.print(Text(f"scenario {result.name or path.name} ({path})", style="bold"))
        out.print(report_view(report))
        if result.passed is None:
            out.print(Text("no expectations stated", style="dim"))
        elif result.passed:
            out.print(Text("✓ expectations met", style="green"))
        else:
            out.print(Text("✗ expectations not met:", style="bold red"))
            for failure in result.failures:
                out.print(Text(f"  - {failure}", style="red"))
    return ExitCode.FAILED if result.passed is False else ExitCode.OK


def _run_folder(folder: Path, as_json: bool, connectors: _Systems) -> ExitCode:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise CliInputError(
            f"{folder}: no scenario files (*.yaml)", hint="give a folder of scenario YAML files"
        )
    client = open_client()
    if as_json:
        rows = [_one(path, client, connectors) for path in files]
    else:
        rows = _with_progress(files, client, connectors)
    if as_json:
        print_json({"scenarios": [row.model_dump(mode="json") for row in rows]})
    else:
        from carebound.cli._render_runs import scenarios_table

        stdout().print(scenarios_table(rows))
    if any(row.error is not None for row in rows):
        return ExitCode.BAD_INPUT
    if any(row.passed is False for row in rows):
        return ExitCode.FAILED
    return ExitCode.OK


def _with_progress(
    files: list[Path], client: redis.Redis, connectors: _Systems
) -> list[ScenarioRow]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    rows = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr(), transient=True) as progress:
        task = progress.add_task("scenarios", total=len(files))
        for path in files:
            progress.update(task, description=f"running {path.name}")
            row = _one(path, client, connectors)
            mark = {"passed": ("✓", "green"), "failed": ("✗", "red"), "error": ("!", "red")}
            progress.console.print(
                Text.assemble(mark.get(row.result, ("•", "yellow")), f" {path.name}: {row.result}")
            )
            rows.append(row)
            progress.advance(task)
    return rows


def _one(path: Path, client: redis.Redis, connectors: _Systems) -> ScenarioRow:
    """Run one scenario of a folder; a scenario that cannot run is a row, not the end."""
    import redis as redis_lib

    from carebound._errors import CareboundError, StoreUnavailableError
    from carebound._phi import mask_report
    from carebound.cli._render_runs import ScenarioRow

    try:
        result = connectors.run(path, client)
    except StoreUnavailableError:
        raise
    except CareboundError as exc:
        return ScenarioRow(scenario=str(path), name=path.stem, error=exc.message, hint=exc.hint)
    except redis_lib.RedisError:
        raise
    return ScenarioRow(
        scenario=result.scenario,
        name=result.name,
        status=result.report.status,
        passed=result.passed,
        failures=result.failures,
        elapsed_ms=result.elapsed_ms,
        report=mask_report(result.report),
    )


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""
    app.command("run")(run)
