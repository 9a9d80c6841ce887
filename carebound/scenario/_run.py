"""Running a scenario on a virtual clock: start the run, answer its holds with the scripted
decisions, let simulated time pass to the next reply or timer, and check the expectations."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._agent import request_match
from carebound._errors import CareboundError, DecisionRefusedError
from carebound._principal import Provenance
from carebound._report import RunReport, run_report
from carebound.approvals import Approve, Decision, Edit, Escalate, Reject
from carebound.clock import VirtualClock
from carebound.engine.results import RunView
from carebound.engine.runner import Runner
from carebound.fhir._parse import load_bundle_json
from carebound.guardrails import PolicyPack, format_validation_error, load_policy_pack
from carebound.scenario._load import ScenarioError, load_json, load_scenario, resolve
from carebound.scenario._model import Expectation, Scenario, ScriptedDecision
from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors import (
    ConfiguredConnectors,
    ConnectorsSource,
    ErpData,
    InboundDocument,
    OutreachConnector,
    RunContext,
    WorldSpec,
)
from carebound.tools.connectors.simulated import SimulatedConnectors, World

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from carebound.tools.connectors.fhir_world import ReferringOffice


class ScenarioResult(BaseModel):
    """What running one scenario gave."""

    model_config = ConfigDict(frozen=True)

    scenario: str
    name: str = ""
    report: RunReport
    passed: bool | None = Field(description="None when the scenario states no expectations.")
    failures: list[str] = Field(default_factory=list)
    elapsed_ms: float


def _bundle(path: Path) -> dict[str, Any]:
    # Read once under the input limits, validated through the FHIR models; raises
    # FhirInputError with the place.
    return load_bundle_json(path)


def _world(scenario: Scenario, base: Path, file: Path) -> WorldSpec:
    w = scenario.world
    ehr = _bundle(resolve(base, w.ehr, key="world.ehr", scenario=file)) if w.ehr else None
    payer = _bundle(resolve(base, w.payer, key="world.payer", scenario=file)) if w.payer else None
    erp = None
    if w.erp:
        raw = load_json(
            resolve(base, w.erp, key="world.erp", scenario=file), key="world.erp", scenario=file
        )
        try:
            erp = ErpData.model_validate(raw)
        except ValidationError as exc:
            raise ScenarioError(
                f"{file}: world.erp ({w.erp}) is not valid ERP data:\n"
                f"{format_validation_error(exc)}",
                hint="see README 'Scenarios' for the ERP file shape",
            ) from None
    return WorldSpec.from_bundles(ehr, payer, list(w.replies), erp)


def _decision(scripted: ScriptedDecision, args_hash: str, args: dict[str, Any]) -> Decision:
    common: dict[str, Any] = {
        "reviewer": scripted.reviewer,
        "role": scripted.role,
        "args_hash": args_hash,
        "note": scripted.note,
        # A scenario's reviewers are scripted: nobody signed in, and the audit trail says so.
        "via": Provenance(channel="scenario", principal=scripted.reviewer, authenticated=False),
    }
    if scripted.decision == "approve":
        return Approve(**common)
    if scripted.decision == "reject":
        return Reject(**common, reason=scripted.reason or "")
    if scripted.decision == "edit":
        return Edit(**common, args={**args, **scripted.set})
    return Escalate(**common, to_role=scripted.to_role or "")


def _matches(scripted: ScriptedDecision, view: RunView) -> bool:
    pending = view.pending
    if pending is None:
        return False
    m = scripted.match
    return (
        (m.tool is None or m.tool == pending.request.tool)
        and (m.rule is None or m.rule == pending.request.rule_id)
        and (m.role is None or m.role == pending.required_role)
    )


def drive_scenario(
    runner: Runner, view: RunView, scenario: Scenario, office: ReferringOffice | None = None
) -> RunView:
    """Apply decisions and let virtual time pass until the run ends, parks for good, or the
    scenario's horizon is reached. The referring office answers as the scenario's reply
    scripts say: on the simulator, or, given ``office`` (a real CDex endpoint), by completing
    the run's request Tasks there, which the run's own outreach connector then polls, as the
    worker's sweep does."""
    clock = runner.clock
    assert isinstance(clock, VirtualClock)
    horizon = scenario.start + scenario.until
    unused = list(scenario.decisions)
    replies = _Replies(runner, view, office)
    for _ in range(1000):
        if view.status == "paused" and view.pending is not None:
            scripted = next((d for d in unused if _matches(d, view)), None)
            if scripted is None:
                break
            unused.remove(scripted)
            request = view.pending.request
            index = scenario.decisions.index(scripted)
            try:
                runner.decide(
                    request.approval_id, _decision(scripted, request.args_hash, request.args)
                )
            except DecisionRefusedError as exc:
                # A scripted decision the rules refuse is a mistake in the scenario file.
                raise ScenarioError(
                    f"decisions[{index}] ({scripted.decision} by {scripted.reviewer!r} as "
                    f"{scripted.role!r}) was refused: {exc.message}",
                    hint=exc.hint or "correct the reviewer or role of that decision",
                ) from None
            view = runner.get(view.run_id)
            continue
        if view.status != "waiting":
            break
        candidates = [t for t in (replies.next_due(), view.record.wait_until) if t]
        if not candidates:
            break
        wake = min(candidates)
        if wake > horizon:
            break
        clock.advance_to(wake)
        for inbound in replies.due(clock.now()):
            if inbound.request_id:
                runner.deliver(
                    request_match(inbound.request_id),
                    inbound.model_dump(mode="json"),
                    event_id=inbound.inbound_id,
                )
        view = runner.get(view.run_id)
        until = view.record.wait_until
        if view.status == "waiting" and until is not None and until <= clock.now():
            runner.fire_timer(view.run_id, until)
            view = runner.get(view.run_id)
    return view


class _Replies:
    """Where a scenario run's replies come from: the simulator's scripts, or (connectors from a
    file) the office played on a real CDex endpoint and the run's outreach connector polling."""

    def __init__(self, runner: Runner, view: RunView, office: ReferringOffice | None) -> None:
        self._office = office
        self._simulated: World | None = None
        self._outreach: OutreachConnector | None = None
        if office is None and not isinstance(runner.connectors, ConfiguredConnectors):
            self._simulated = World.attach(runner.client, view.run_id, prefix=runner.prefix)
        else:
            run = RunContext(run_id=view.run_id, agent=view.record.agent, prefix=runner.prefix,
                             client=runner.client, world_seeded=True,
                             clock=runner.clock.now)  # fmt: skip
            self._outreach = runner.connectors(run).outreach

    def next_due(self) -> datetime | None:
        if self._simulated is not None:
            return self._simulated.outreach.next_due()
        return self._office.next_due() if self._office is not None else None

    def due(self, now: datetime) -> list[InboundDocument]:
        if self._simulated is not None:
            return self._simulated.outreach.due_replies(now)
        assert self._outreach is not None
        if self._office is not None:
            self._office.answer_due(now)
        return self._outreach.due_replies(now)


def check_expectations(expect: Expectation, report: RunReport, view: RunView) -> list[str]:
    """Every way the run's outcome differs from what the scenario expects."""
    failures = []
    if expect.status is not None and report.status != expect.status:
        failures.append(f"status: expected {expect.status}, got {report.status}")
    if expect.missing_documents is not None:
        got = sorted(m.code for m in report.findings.missing_documents)
        if got != sorted(expect.missing_documents):
            failures.append(
                f"missing_documents: expected {sorted(expect.missing_documents)}, got {got}"
            )
    for wanted in expect.mismatches or []:
        found = any(
            m.field == wanted.field
            and (wanted.risk is None or m.risk == wanted.risk)
            and (wanted.action is None or m.action == wanted.action)
            for m in report.findings.mismatches
        )
        if not found:
            failures.append(f"mismatches: no {wanted.model_dump(exclude_none=True)} reported")
    if expect.mismatch_count is not None and len(report.findings.mismatches) != (
        expect.mismatch_count
    ):
        failures.append(
            f"mismatch_count: expected {expect.mismatch_count}, "
            f"got {len(report.findings.mismatches)}"
        )
    if expect.effects is not None:
        done = Counter(e.tool for e in report.effects if e.status == "done")
        for tool_name, count in expect.effects.items():
            if done.get(tool_name, 0) != count:
                failures.append(
                    f"effects: expected {count} x {tool_name}, got {done.get(tool_name, 0)}"
                )
    if expect.pending is not None:
        got_pending = [(p.tool, p.required_role) for p in report.pending]
        for p in expect.pending:
            if not any(
                (p.tool is None or p.tool == t) and (p.required_role in (None, r))
                for t, r in got_pending
            ):
                failures.append(f"pending: no hold {p.model_dump(exclude_none=True)}")
        if not expect.pending and got_pending:
            failures.append(f"pending: expected none, got {got_pending}")
    if expect.summary_contains and expect.summary_contains not in report.summary:
        failures.append(
            f"summary: expected it to contain {expect.summary_contains!r}, got {report.summary!r}"
        )
    if expect.denied_tools is not None:
        denied = {r.tool for r in view.results if r.status == "denied"}
        for tool_name in expect.denied_tools:
            if tool_name not in denied:
                failures.append(f"denied_tools: {tool_name} was not denied")
    return failures


def run_scenario(
    path: Path,
    client: redis.Redis,
    *,
    prefix: str = DEFAULT_PREFIX,
    model: BaseChatModel | None = None,
    connectors: ConnectorsSource | None = None,
    fhir_server: str | None = None,
) -> ScenarioResult:
    """Run one scenario file and check its expectations (``connectors``: as ``Runner`` takes
    them; they must be able to seed the scenario's world). ``fhir_server``: the root URL of
    the local FHIR test server instead (``ROOT/ehr``, ``/payer``, ``/office``; see
    ``fhir_world.local_server_config``), the payer connected when the world has one.

    With a connectors file naming a CDex endpoint (or ``fhir_server``), the scenario's world is
    seeded into the servers and its referring office is played there (``played_office``)."""
    started = time.perf_counter()
    file = path.resolve()
    scenario = load_scenario(file)
    base = file.parent
    expected_error = scenario.expect.error if scenario.expect else None
    try:
        world = _world(scenario, base, file)
        if fhir_server is not None:
            from carebound.tools.connectors.fhir_world import local_server_connectors

            connectors = local_server_connectors(fhir_server, payer=bool(world.payer))
        runner = Runner(
            client, prefix=prefix, clock=VirtualClock(scenario.start), model=model,
            connectors=connectors,
        )  # fmt: skip
        _check_office(runner, world, file)
        case = _bundle(resolve(base, scenario.case, key="case", scenario=file))
        policy_path = base / scenario.policy
        pack = load_policy_pack(policy_path if policy_path.is_file() else scenario.policy)
        if scenario.agent not in runner.agent_names:
            raise ScenarioError(
                f"{file}: agent: unknown agent {scenario.agent!r}",
                hint=f"known agents: {', '.join(runner.agent_names)}",
            )
    except CareboundError as exc:
        if expected_error is None:
            raise
        found = expected_error in str(exc)
        return ScenarioResult(
            scenario=str(path),
            name=scenario.name or path.stem,
            report=RunReport(run_id="", status="refused", summary=exc.message),
            passed=found,
            failures=[] if found else [f"error: expected {expected_error!r} in {exc.message!r}"],
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
    if expected_error is not None:
        return ScenarioResult(
            scenario=str(path),
            name=scenario.name or path.stem,
            report=RunReport(run_id="", status="not-refused"),
            passed=False,
            failures=[f"error: expected the input to be refused with {expected_error!r}"],
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
    try:
        return _run_started(
            runner, scenario, path, case=case, pack=pack, world=world, started=started
        )
    finally:
        if fhir_server is not None and isinstance(runner.connectors, ConfiguredConnectors):
            runner.connectors.close()  # made here for this scenario: its connections end here


def _check_office(runner: Runner, world: WorldSpec, file: Path) -> None:
    """Refuse a scenario whose office replies cannot be played on the connectors file's
    systems: they are played on its CDex endpoint."""
    factory = runner.connectors
    if not isinstance(factory, ConfiguredConnectors) or not world.replies:
        return
    office = factory.config.office
    if office is None or office.cdex is None:
        raise ScenarioError(
            f"{file}: world.replies: the referring office's replies are played on the CDex "
            "endpoint of the connectors file, which has no [office.cdex]",
            hint="add [office.cdex] with a test server's base_url, or run with --fhir-server URL",
        )


def _run_started(
    runner: Runner,
    scenario: Scenario,
    path: Path,
    *,
    case: dict[str, Any],
    pack: PolicyPack,
    world: WorldSpec,
    started: float,
) -> ScenarioResult:
    """Start the scenario's run, drive it to its end (or horizon), check the expectations."""
    view = runner.start(
        scenario.agent, case, requester=scenario.requester, policy=pack, world=world
    )
    factory = runner.connectors
    config = factory.config if isinstance(factory, ConfiguredConnectors) else None
    try:
        if config is None:
            view = drive_scenario(runner, view, scenario)
        else:
            from carebound.tools.connectors.fhir_world import played_office

            with played_office(config, world.replies, run_id=view.run_id) as office:
                view = drive_scenario(runner, view, scenario, office)
    except ScenarioError as exc:
        raise ScenarioError(f"{path.resolve()}: {exc.message}", hint=exc.hint) from None
    report = run_report(view)
    failures = check_expectations(scenario.expect, report, view) if scenario.expect else []
    return ScenarioResult(
        scenario=str(path),
        name=scenario.name or path.stem,
        report=report,
        passed=None if scenario.expect is None else not failures,
        failures=failures,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def run_case(
    client: redis.Redis,
    *,
    agent: str,
    case: Path,
    ehr: Path | None = None,
    policy: str | None = None,
    requester: str = "cli-operator",
    prefix: str = DEFAULT_PREFIX,
    connectors: ConnectorsSource | None = None,
) -> RunReport:
    """Run one agent on a FHIR Bundle: on the simulator, whose EHR is seeded from ``ehr`` (else
    the case), or on the systems ``connectors`` names (nothing seeded: they hold their data)."""
    case_json = _bundle(case)
    ehr_json = _bundle(ehr) if ehr else None
    runner = Runner(client, prefix=prefix, connectors=connectors)
    simulated = isinstance(runner.connectors, SimulatedConnectors)
    world = WorldSpec.from_bundles(ehr_json or case_json, None) if simulated else None
    view = runner.start(agent, case_json, requester=requester, policy=policy, world=world)
    return run_report(view)
