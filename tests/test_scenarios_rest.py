"""Every scenario again, with its systems on the real FHIR test server (``--fhir-server``).

``test_scenarios`` runs each scenario on the simulated connectors; here the same file, with the
same expectations, runs through ``run_scenario(..., fhir_server=ROOT)``, which is what
``carebound run SCENARIO --fhir-server URL`` does: the connectors file of the local server
(``fhir_world.local_server_config``) builds the run's connectors, the world is seeded into the
server (one transaction bundle per base), the agent reads and writes through ``RestEHR`` and
``RestPayer``, document requests go out as CDex Tasks to the office base, and the referring
office is played there (``ReferringOffice`` completes the run's Tasks; the run's outreach
connector polls them, as the worker's sweep does).

Parts that stay simulated, and why, are in :data:`SIMULATED_PARTS`; a scenario left out of
the real run would need a written reason in :data:`NOT_ON_THE_SERVER` (there is none).
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from carebound.agents import registry
from carebound.scenario import load_scenario, run_scenario
from carebound.tools import EffectClass, ToolSpec
from carebound.tools.connectors.outreach_channels import EFFECT_ID_SYSTEM
from tests.conftest import PROJECT, SCENARIOS
from tests.fhir_server import FhirBases, fhir_json
from tests.test_cli import cli
from tests.test_scenarios import SCENARIO_FILES

NOT_ON_THE_SERVER: dict[str, str] = {}
"""Scenario (file stem) -> why it does not run on the FHIR server. Empty: every one does."""

SIMULATED_PARTS: dict[str, str] = {
    "erp": "the ERP (purchase orders, goods receipts, invoices) stays simulated: hospital ERPs "
    "(SAP, Oracle, Workday) speak their own APIs, not FHIR, and no ERP test server runs here; "
    "the billing scenarios run with the EHR and payer on the server and the ERP records in the "
    "run store (connectors file [erp] provider = 'simulated')",
}
"""System -> why it is simulated in the real run."""

ON_THE_SERVER = [p for p in SCENARIO_FILES if p.stem not in NOT_ON_THE_SERVER]


def test_every_scenario_runs_on_the_server_or_says_why_not() -> None:
    stems = {p.stem for p in SCENARIO_FILES}
    assert set(NOT_ON_THE_SERVER) <= stems, set(NOT_ON_THE_SERVER) - stems
    assert all(reason.strip() for reason in NOT_ON_THE_SERVER.values())
    assert {p.stem for p in ON_THE_SERVER} | set(NOT_ON_THE_SERVER) == stems
    # Nothing is left out today: the domain scenarios (chase, packet, intake, reconcile,
    # billing) all run, with the ERP the one simulated part.
    assert not NOT_ON_THE_SERVER
    assert set(SIMULATED_PARTS) == {"erp"}


class _Counting(httpx.HTTPTransport):
    """A plain HTTP transport that counts what it sends, per base (to show the run used the
    server)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        base = next((b for b in ("ehr", "payer", "office") if f"/{b}/" in request.url.path), "")
        self.calls[(base, request.method)] += 1
        return super().handle_request(request)

    def count(self, base: str, *methods: str) -> int:
        return sum(self.calls[(base, m)] for m in methods)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counting]:
    """Every FHIR call of the run's connectors through one counting transport."""
    from carebound.tools.connectors import fhir_world

    counting = _Counting()
    original = fhir_world.local_server_connectors

    def counted(root: str, *, payer: bool = True, transport: Any = None) -> Any:
        return original(root, payer=payer, transport=counting)

    monkeypatch.setattr(fhir_world, "local_server_connectors", counted)
    yield counting
    counting.close()


@pytest.mark.parametrize("path", ON_THE_SERVER, ids=[p.stem for p in ON_THE_SERVER])
def test_scenario_on_the_fhir_server(
    path: Path,
    fhir_bases: FhirBases,
    wire: _Counting,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    scenario = load_scenario(path)
    result = run_scenario(path, redis_client, prefix=key_prefix, fhir_server=fhir_bases.root)
    assert result.passed is not False, f"{path.name} on the FHIR server: " + "; ".join(
        result.failures
    )
    assert result.passed is (None if scenario.expect is None else True)
    if not result.report.run_id:
        return  # an input refused before any run (the bad_* scenarios): refused alike
    # The agent really went through the server: it read the EHR (and the payer it had), and
    # every EHR write the run made reached the server as a PUT or POST.
    if scenario.world.ehr and scenario.agent != "demo":  # the demo agent reads only the case
        assert wire.count("ehr", "GET") > 0, wire.calls
    if scenario.world.payer:
        assert wire.count("payer", "GET") > 0, wire.calls
    done = [e for e in result.report.effects if e.status == "done"]
    tools = registry()[scenario.agent].tools
    if any(_writes_ehr(tools[e.tool]) for e in done if e.tool in tools):
        assert wire.count("ehr", "PUT", "POST") > 0, wire.calls
    # Every request sent went out as a CDex Task on the office base (found there by its
    # effect identifier), and every reply recorded came back as a completed Task.
    with httpx.Client() as http:
        for effect in done:
            if effect.tool == "send_request_attempt":
                found = fhir_json(
                    http.get(
                        f"{fhir_bases.office}/Task",
                        params={"identifier": f"{EFFECT_ID_SYSTEM}|{effect.key}"},
                    )
                )
                assert found.get("total") == 1, (effect.key, found)
        replies = sum(e.tool == "record_reply" for e in done)
        if replies:
            tasks = fhir_json(http.get(f"{fhir_bases.office}/Task", params={"status": "completed"}))
            assert tasks.get("total", 0) >= replies


def _writes_ehr(spec: ToolSpec[Any]) -> bool:
    return spec.scope.startswith("ehr:") and spec.effect is not EffectClass.READ


def test_carebound_run_with_fhir_server_plays_the_office_over_cdex(
    env: str, fhir_server_url: str
) -> None:
    """The CLI: ``carebound run SCENARIO --fhir-server URL`` seeds the world into a namespace
    of its own on the server, and the office's reply arrives through a completed CDex Task."""
    path = SCENARIOS / "chase_happy_path.yaml"
    result = cli("run", str(path), "--fhir-server", fhir_server_url)
    assert "✓ expectations met" in result.stdout
    assert "record_reply" in result.stdout and "file_document" in result.stdout
    # stderr names the bases the run used; the office there holds the completed request.
    line = next(x for x in result.stderr.splitlines() if "FHIR bases" in x)
    root = line.split("FHIR bases ", 1)[1].split("/ehr", 1)[0]
    assert root.startswith(f"{fhir_server_url}/chase_happy_path-")
    with httpx.Client() as http:
        tasks = fhir_json(http.get(f"{root}/office/Task"))
        entries: Any = tasks["entry"]
        assert [e["resource"]["status"] for e in entries] == ["completed"]
        # The reply is on the scenario's clock (the office answers 6 hours after the send,
        # on the scenario's Monday 2026-03-02 at 09:00), not the server's wall clock: so is
        # the reply the run recorded in the EHR.
        answered = "2026-03-02T15:00:00+00:00"
        assert entries[0]["resource"]["lastModified"] == answered
        bundle: Any = fhir_json(http.get(f"{root}/ehr/Communication"))
        received = [e["resource"].get("received") for e in bundle["entry"]]
        assert answered in received, received
        filed = fhir_json(http.get(f"{root}/ehr/DocumentReference"))
        assert filed.get("total", 0) >= 1


def test_fhir_server_and_connectors_are_one_or_the_other(env: str, tmp_path: Path) -> None:
    path = SCENARIOS / "chase_happy_path.yaml"
    file = tmp_path / "c.toml"
    file.write_text('[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n')
    result = cli("run", str(path), "--fhir-server", "http://127.0.0.1:9", "--connectors",
                 str(file), code=2)  # fmt: skip
    assert "--fhir-server and --connectors" in result.stderr
    result = cli("run", str(path), "--fhir-server", "localhost:9", code=2)
    assert "is not an http(s) URL" in result.stderr


def test_the_readme_fhir_server_example_runs(env: str, fhir_server_url: str) -> None:
    """README's 'Scenarios on the FHIR server' command, as written (on the suite's server)."""
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("### Scenarios on the FHIR server", 1)[1].split("\n### ", 1)[0]
    [command] = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    args = shlex.split(command)
    assert args[:2] == ["carebound", "run"] and "--fhir-server" in args
    at = args.index("--fhir-server") + 1
    assert args[at] == "http://127.0.0.1:8090"  # the server's documented default address
    args[at] = fhir_server_url
    with contextlib.chdir(PROJECT):
        result = cli(*args[1:])
    assert "✓ expectations met" in result.stdout


def test_carebound_run_with_a_connectors_file_plays_the_office_there(
    env: str, fhir_bases: FhirBases, tmp_path: Path
) -> None:
    """``--connectors FILE`` on a scenario: the world goes to the file's servers and the office
    is played on its CDex endpoint; a file without one cannot play the scenario's replies."""
    path = SCENARIOS / "chase_happy_path.yaml"
    file = tmp_path / "connectors.toml"
    ehr = f'[ehr]\nbase_url = "{fhir_bases.ehr}"\n'
    file.write_text(
        f'{ehr}[office.cdex]\nbase_url = "{fhir_bases.office}"\nchannels = ["portal", "fax"]\n'
    )
    result = cli("run", str(path), "--connectors", str(file))
    assert "✓ expectations met" in result.stdout
    with httpx.Client() as http:
        tasks: Any = fhir_json(http.get(f"{fhir_bases.office}/Task"))
        assert [e["resource"]["status"] for e in tasks["entry"]] == ["completed"]
        assert fhir_json(http.get(f"{fhir_bases.ehr}/DocumentReference")).get("total", 0) >= 1
    file.write_text(f'{ehr}[office.fax]\nprovider = "simulated"\n')
    refused = cli("run", str(path), "--connectors", str(file), code=2)
    assert "has no [office.cdex]" in refused.stderr and "Traceback" not in refused.stderr
