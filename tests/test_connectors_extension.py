"""The typed extension point: ``Runner(connectors=...)`` takes a service's own Connectors factory
(here in-memory systems, no simulator), a connectors file, or nothing (the simulator); the
engine imports no connector implementation, and what cannot be loaded fails loudly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis

from carebound import Runner, VirtualClock
from carebound._agent import request_match
from carebound.state.breaker import BreakerStore
from carebound.tools.connectors import (
    ConfiguredConnectors,
    Connectors,
    ConnectorsConfigError,
    InboundDocument,
    RunContext,
    ScriptedDocument,
    UnconnectedERP,
    UnconnectedOutreach,
    UnconnectedPayer,
    WorldSpec,
    connectors_factory,
)
from carebound.tools.connectors.config import EhrConfig, OfficeConfig, connectors_config
from carebound.tools.connectors.simulated import SimulatedConnectors, World
from tests.conftest import PROJECT, SCENARIOS
from tests.memory_connectors import MemoryEHR, MemorySystems

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTE = ScriptedDocument(
    code="11506-3",
    display="Progress note",
    text="Progress note. Chief complaint: chest pressure. Assessment and plan: angina.",
    date=datetime(2026, 2, 20, tzinfo=UTC).date(),
)


def _case(name: str) -> dict[str, Any]:
    return dict(json.loads((SCENARIOS / "cases" / name).read_text()))


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e["resource"]) for e in bundle["entry"]]


def test_a_service_own_connectors_drive_a_referral_run_end_to_end(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    case = _case("chase_no_note.json")
    systems = MemorySystems(ehr=MemoryEHR(_resources(case)))
    runner = Runner(redis_client, prefix=key_prefix, clock=VirtualClock(MONDAY), connectors=systems)
    view = runner.start("referral_chaser", case, requester="sam")
    assert view.status == "waiting"
    # The chaser opened a document request in *our* EHR and faxed the office through *our*
    # outreach; the run's keys in Redis hold no simulated world.
    [receipt] = systems.outreach.sent.values()
    assert (receipt.channel, receipt.to, receipt.attempt) == ("fax", "555-010-3000", 1)
    request = systems.ehr.read("Task", receipt.request_id)
    assert request["status"] == "requested"
    assert not list(redis_client.scan_iter(f"{key_prefix}:{{{view.run_id}}}:world:*"))
    assert {(r.run_id, r.agent) for r in systems.runs} == {(view.run_id, "referral_chaser")}

    # The office answers (the service's own inbound gateway delivers it).
    runner.clock.advance(timedelta(hours=6))  # type: ignore[attr-defined]
    inbound = InboundDocument.build(
        inbound_id="in-1", request_id=receipt.request_id, channel="fax", sender=receipt.to,
        received_at=runner.clock.now(), documents=[NOTE],
    )  # fmt: skip
    delivered = runner.deliver(
        request_match(receipt.request_id), inbound.model_dump(mode="json"), event_id="in-1"
    )
    assert delivered == [view.run_id]
    view = runner.get(view.run_id)
    assert view.status == "completed", view.record.summary
    notes = systems.ehr.search("DocumentReference", subject="Patient/pat-delgado")
    assert any(d["type"]["coding"][0]["code"] == "11506-3" for d in notes)
    assert systems.ehr.read("Task", receipt.request_id)["status"] == "completed"
    assert systems.ehr.search("Communication", based_on=f"Task/{receipt.request_id}")
    # Every effect went through the ledger once: a repeated write key wrote nothing twice.
    assert systems.ehr.write_calls >= len(systems.ehr.writes)


def test_a_world_needs_connectors_that_can_seed_one(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    case = _case("chase_no_note.json")
    systems = MemorySystems(ehr=MemoryEHR(_resources(case)))
    runner = Runner(redis_client, prefix=key_prefix, connectors=systems)
    with pytest.raises(Exception, match="cannot seed a scenario's world") as caught:
        runner.start(
            "referral_chaser", case, requester="sam", world=WorldSpec.from_bundles(case, None)
        )
    assert caught.value.__class__.__name__ == "ConnectorError"
    assert not list(redis_client.scan_iter(f"{key_prefix}:*"))  # refused before any write


def test_no_connectors_means_the_simulator_and_it_seeds_worlds(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    factory = connectors_factory(None)
    assert isinstance(factory, SimulatedConnectors)
    case = _case("chase_no_note.json")
    runner = Runner(redis_client, prefix=key_prefix, clock=VirtualClock(MONDAY))
    view = runner.start(
        "referral_chaser", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    world = World.attach(redis_client, view.run_id, prefix=key_prefix)
    assert isinstance(world, Connectors)
    assert sorted(e.tool for e in view.effects) == ["open_document_request", "send_request_attempt"]
    assert world.outreach.next_due() is None  # no reply scripted, and the attempt went out


def test_a_plain_function_is_a_factory(redis_client: redis.Redis, key_prefix: str) -> None:
    case = _case("chase_no_note.json")
    ehr = MemoryEHR(_resources(case))
    seen: list[RunContext] = []

    def connectors(run: RunContext) -> Connectors:
        seen.append(run)
        return Connectors(
            ehr=ehr, outreach=UnconnectedOutreach(), payer=UnconnectedPayer(), erp=UnconnectedERP()
        )

    runner = Runner(
        redis_client, prefix=key_prefix, clock=VirtualClock(MONDAY), connectors=connectors
    )
    view = runner.start("referral_chaser", case, requester="sam")
    # Sending is refused ("no outreach channel is connected"): a tool error the run reports.
    print(
        "STATUS",
        view.status,
        view.record.summary,
        [(r.tool, r.status, r.reason) for r in view.results],
    )
    refused = [r for r in view.results if r.status == "error"]
    assert refused and "no outreach channel is connected" in (refused[0].reason or "")
    assert seen and seen[0].run_id == view.run_id and seen[0].prefix == key_prefix


# --- the connectors file as a source ----------------------------------------------------------


RUN_CLOCK = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)).now
"""The runs' clock the factory is given (a scenario's virtual clock)."""


def _fake_rest(monkeypatch: pytest.MonkeyPatch, built: list[tuple[str, Any]]) -> None:
    """Stand-ins for the REST and outreach modules, to check how the factory calls them."""
    rest = ModuleType("carebound.tools.connectors.fhir_rest")
    outreach = ModuleType("carebound.tools.connectors.outreach_channels")

    def build_ehr(
        config: EhrConfig, *, breakers: BreakerStore, clock: Callable[[], datetime] | None
    ) -> MemoryEHR:
        built.append(("ehr", (str(config.base_url), type(breakers).__name__, clock)))
        return MemoryEHR()

    def build_outreach(
        config: OfficeConfig, run: RunContext, *, clock: Callable[[], datetime] | None
    ) -> UnconnectedOutreach:
        built.append(("office", (config.fax is not None, run.run_id, clock)))
        return UnconnectedOutreach()

    rest.build_ehr = build_ehr  # type: ignore[attr-defined]
    rest.build_payer = build_ehr  # type: ignore[attr-defined]
    outreach.build_outreach = build_outreach  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, rest.__name__, rest)
    monkeypatch.setitem(sys.modules, outreach.__name__, outreach)


def test_a_connectors_file_builds_each_system_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    built: list[tuple[str, Any]] = []
    _fake_rest(monkeypatch, built)
    file = tmp_path / "connectors.toml"
    file.write_text('[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n[office.fax]\n')
    for source in (file, str(file), connectors_config({"ehr": {"base_url": "http://127.0.0.1:9/ehr"}, "office": {"fax": {}}})):  # fmt: skip # noqa: E501
        factory = connectors_factory(source)
        assert isinstance(factory, ConfiguredConnectors)
        run = RunContext(run_id="r1", agent="referral_chaser", prefix="cb", client=redis_client,
                         clock=RUN_CLOCK)  # fmt: skip
        connectors = factory(run)
        again = factory(RunContext(run_id="r2", agent="referral_chaser", prefix="cb",
                                   client=redis_client, clock=RUN_CLOCK))  # fmt: skip
        assert isinstance(connectors.ehr, MemoryEHR)
        assert again.ehr is connectors.ehr  # one EHR connector (pool, token) for every run
        assert isinstance(connectors.payer, UnconnectedPayer)  # no [payer]: not connected
        assert not connectors.payer.connected()
        assert isinstance(connectors.erp, UnconnectedERP)
    # Per source: the EHR once (breakers in the run store), the office channels per run; all
    # on the runs' clock (the breakers' cool-down agrees with the runs' retry timers).
    assert built[:3] == [
        ("ehr", ("http://127.0.0.1:9/ehr", "BreakerStore", RUN_CLOCK)),
        ("office", (True, "r1", RUN_CLOCK)),
        ("office", (True, "r2", RUN_CLOCK)),
    ]


def test_the_environment_names_the_connectors_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[str, Any]] = []
    _fake_rest(monkeypatch, built)
    file = tmp_path / "connectors.toml"
    file.write_text('[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n')
    monkeypatch.setenv("CAREBOUND_CONNECTORS", str(file))
    factory = connectors_factory(None)
    assert isinstance(factory, ConfiguredConnectors)
    assert str(factory.config.ehr.base_url) == "http://127.0.0.1:9/ehr"


def test_a_missing_implementation_fails_loudly_when_the_runner_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, key_prefix: str
) -> None:
    monkeypatch.setitem(sys.modules, "carebound.tools.connectors.fhir_rest", None)
    file = tmp_path / "connectors.toml"
    file.write_text('[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n')
    with pytest.raises(ConnectorsConfigError, match=r"\[ehr\]: cannot load carebound\.tools"):
        Runner(redis_client, prefix=key_prefix, connectors=file)


def test_a_missing_simulator_fails_loudly_not_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "carebound.tools.connectors.simulated", None)
    with pytest.raises(ConnectorsConfigError, match="the simulated connectors: cannot load"):
        connectors_factory(None)


def test_a_bad_connectors_file_is_refused_before_anything_is_written(
    tmp_path: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    file = tmp_path / "connectors.toml"
    file.write_text('[ehr]\nbase_url = "ftp://nowhere"\n')
    with pytest.raises(ConnectorsConfigError, match=r"ehr\.base_url"):
        Runner(redis_client, prefix=key_prefix, connectors=file)
    with pytest.raises(ConnectorsConfigError, match="expected a connectors file path"):
        Runner(redis_client, prefix=key_prefix, connectors=42)  # type: ignore[arg-type]
    assert not list(redis_client.scan_iter(f"{key_prefix}:*"))


# --- the engine knows no implementation -------------------------------------------------------


def test_a_run_on_other_connectors_loads_no_simulator(redis_url: str, key_prefix: str) -> None:
    """A whole referral run on a service's connectors, in a fresh process: no module that holds
    the simulator is ever imported (the engine, the agents and the tools name none of it)."""
    code = textwrap.dedent(
        f"""
        import json, sys
        import redis
        from carebound import Runner, VirtualClock
        from tests.memory_connectors import MemoryEHR, MemorySystems
        case = json.loads(open("scenarios/cases/chase_no_note.json").read())
        systems = MemorySystems(ehr=MemoryEHR([e["resource"] for e in case["entry"]]))
        client = redis.Redis.from_url({redis_url!r})
        runner = Runner(client, prefix={key_prefix!r}, clock=VirtualClock(), connectors=systems)
        print("status:" + runner.start("referral_chaser", case, requester="sam").status)
        for name, module in sorted(sys.modules.items()):
            if name.startswith("carebound") and (
                "simulated" in name or hasattr(module, "SimulatedEHR")
                or hasattr(module, "World")
            ):
                print("simulator-in:" + name)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT
    ).stdout.split()
    assert "status:waiting" in out
    assert not [line for line in out if line.startswith("simulator-in:")], out


def test_a_connectors_file_builds_the_shipped_rest_connectors(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    from carebound.tools.connectors.fhir_rest import RestEHR
    from carebound.tools.connectors.outreach_channels import ChannelOutreach

    file = tmp_path / "connectors.toml"
    file.write_text('[ehr]\nbase_url = "http://127.0.0.1:9/ehr"\n[office.fax]\n')
    factory = connectors_factory(file)
    run = RunContext(run_id="r1", agent="referral_chaser", prefix="cb", client=redis_client)
    connectors = factory(run)
    assert isinstance(connectors.ehr, RestEHR)
    assert isinstance(connectors.outreach, ChannelOutreach)
    assert not connectors.payer.connected()
