"""Every domain scenario again, with the EHR and the payer on the real FHIR test server.

``test_scenarios`` runs each scenario on the simulated connectors; here the same file, with the
same expectations, runs with its world seeded into a FHIR server (one transaction bundle per
base, ``fhir_world.seed_world``) and the agent reading and writing through ``RestEHR`` and
``RestPayer``. Outreach and the ERP stay simulated in this comparison (the CDex channel has its
own tests on the real server); a scenario with no payer world has no payer connected, as a
connectors file without ``[payer]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from carebound.agents import registry
from carebound.scenario import load_scenario, run_scenario
from carebound.scenario._run import _world
from carebound.tools import EffectClass, ToolSpec
from carebound.tools.connectors import Connectors, RunContext, WorldSpec
from carebound.tools.connectors.fhir_rest import FhirRestClient, RestEHR, RestPayer
from carebound.tools.connectors.fhir_world import FhirBases, seed_world
from carebound.tools.connectors.simulated import (
    SimulatedConnectors,
    SimulatedERP,
    SimulatedOutreach,
    SimulatedPayer,
)
from tests.fhir_server import FhirBases as ServerBases
from tests.test_scenarios import SCENARIO_FILES


def _domain(path: Path) -> bool:
    """A scenario whose agent reads an EHR (the hello/demo and bad-input ones do not)."""
    scenario = load_scenario(path)
    return (
        scenario.agent != "demo"
        and scenario.expect is not None
        and scenario.expect.error is None
        and bool(scenario.world.ehr or scenario.world.payer)
    )


DOMAIN = [p for p in SCENARIO_FILES if _domain(p)]


class _Counting(httpx.HTTPTransport):
    """A plain HTTP transport that counts what it sends (to show the run used the server)."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.methods[request.method] += 1
        return super().handle_request(request)


class _RestWorld:
    """The connectors factory: EHR and payer over REST on the scenario's bases. It seeds the
    world there, and into the simulator too (whose outreach replies the scenario plays)."""

    def __init__(self, bases: ServerBases, spec: WorldSpec) -> None:
        self.bases = bases
        self.has_payer = bool(spec.payer)
        self.clients: list[FhirRestClient] = []
        self.ehr_wire = _Counting()
        self.payer_wire = _Counting()

    def seed_world(self, run: RunContext, spec: WorldSpec, /) -> None:
        with httpx.Client() as http:
            seed_world(spec, FhirBases.under(self.bases.root), http)
        SimulatedConnectors().seed_world(run, spec)

    def __call__(self, run: RunContext, /) -> Connectors:
        client, run_id, prefix = run.client, run.run_id, run.prefix
        ehr = FhirRestClient(self.bases.ehr, system="ehr", transport=self.ehr_wire)
        self.clients.append(ehr)
        payer: RestPayer | SimulatedPayer = SimulatedPayer(client, run_id, prefix=prefix)
        if self.has_payer:
            http = FhirRestClient(self.bases.payer, system="payer", transport=self.payer_wire)
            self.clients.append(http)
            payer = RestPayer(http, subscriber_id_search=True)
        return Connectors(
            ehr=RestEHR(ehr),
            outreach=SimulatedOutreach(client, run_id, prefix=prefix),
            payer=payer,
            erp=SimulatedERP(client, run_id, prefix=prefix),
        )

    def close(self) -> None:
        for http in self.clients:
            http.close()


@pytest.fixture
def rest_world(fhir_bases: ServerBases, request: pytest.FixtureRequest) -> Iterator[_RestWorld]:
    path: Path = request.node.callspec.params["path"]
    world = _RestWorld(fhir_bases, _world(load_scenario(path), path.parent, path))
    yield world
    world.close()


def test_domain_scenarios_are_listed() -> None:
    assert len(DOMAIN) >= 20, [p.stem for p in DOMAIN]


@pytest.mark.parametrize("path", DOMAIN, ids=[p.stem for p in DOMAIN])
def test_scenario_on_the_fhir_server(
    path: Path, rest_world: _RestWorld, redis_client: redis.Redis, key_prefix: str
) -> None:
    result = run_scenario(path, redis_client, prefix=key_prefix, connectors=rest_world)
    assert result.passed, f"{path.name} on the FHIR server: " + "; ".join(result.failures)
    # The agent really went through the server: it read the EHR (and the payer it had), and
    # every EHR write the run made reached the server as a PUT or POST.
    assert rest_world.ehr_wire.methods["GET"] > 0
    assert rest_world.payer_wire.methods["GET"] > 0 or not rest_world.has_payer
    tools = registry()[load_scenario(path).agent].tools
    ehr_writes = [
        e for e in result.report.effects if e.status == "done" and _writes_ehr(tools[e.tool])
    ]
    written = rest_world.ehr_wire.methods["PUT"] + rest_world.ehr_wire.methods["POST"]
    assert written >= (1 if ehr_writes else 0), (ehr_writes, rest_world.ehr_wire.methods)


def _writes_ehr(spec: ToolSpec[Any]) -> bool:
    return spec.scope.startswith("ehr:") and spec.effect is not EffectClass.READ
