"""A run records the connectors it was started with; a process whose connectors reach other
systems leaves it alone (marked, untouched) instead of half-driving it, and one whose connectors
match drives it. A connectors file's identity is where its systems are, not how they are called."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import Approve, Runner
from carebound.tools.connectors import (
    ConfiguredConnectors,
    RunContext,
    WorldSpec,
    connectors_factory,
    connectors_identity,
    simulated_connectors,
)
from carebound.tools.connectors.config import connectors_config
from carebound.tools.connectors.simulated import SimulatedConnectors, World
from tests.test_cli import cli, cli_json

EHR = {"base_url": "https://ehr.example.org/fhir/r4"}


class Elsewhere:
    """The simulator's systems under another identity (stands for a connectors file)."""

    identity = "config:elsewhere"

    def __init__(self) -> None:
        self._simulator = SimulatedConnectors()

    def __call__(self, run: RunContext, /) -> World:
        return self._simulator(run)

    def seed_world(self, run: RunContext, spec: WorldSpec, /) -> None:
        self._simulator.seed_world(run, spec)


def test_a_run_started_with_other_connectors_is_left_alone_until_a_matching_process_drives_it(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    served = Runner(redis_client, prefix=key_prefix, connectors=Elsewhere())
    run = served.start("demo", demo_case, requester="sam", world=demo_world)
    assert run.status == "paused"
    assert served.get(run.run_id).record.connectors == "config:elsewhere"
    hold = run.pending.request

    simulator_only = Runner(redis_client, prefix=key_prefix)  # e.g. a worker without the file
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
    with caplog.at_level(logging.WARNING, logger="carebound.runner"):
        result = simulator_only.decide(hold.approval_id, decision)
        assert simulator_only.recover_runs().left == [run.run_id]
    assert result.outcome == "decided"
    left = simulator_only.get(run.run_id)
    assert left.status == "paused" and left.record.failures == 0  # not driven, not failed
    assert "drive_failed" not in [e.detail.get("kind") for e in served.audit(run.run_id)]
    assert simulator_only.pending() == []  # the decided hold left the inbox
    mismatches = [
        r.carebound for r in caplog.records if r.getMessage() == "run.connectors_mismatch"
    ]  # type: ignore[attr-defined]
    assert mismatches[0]["run_connectors"] == "config:elsewhere"
    assert mismatches[0]["process_connectors"] == "simulator"

    assert served.recover_runs().recovered == [run.run_id]  # marked, so a matching one drives it
    assert served.get(run.run_id).status == "waiting"
    assert served.verify(run.run_id).ok


def test_a_decision_not_driven_here_says_who_takes_the_run_on(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    """`carebound approve` in a process whose connectors differ said only "run R is now
    paused", as if the approval had parked the run again; it says the run waits for a
    process that can drive it, and which connectors that is."""
    from rich.console import Console

    from carebound.cli._render_packet import decision_result

    served = Runner(redis_client, prefix=key_prefix, connectors=Elsewhere())
    run = served.start("demo", demo_case, requester="sam", world=demo_world)
    hold = run.pending.request
    simulator_only = Runner(redis_client, prefix=key_prefix)
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
    result = simulator_only.decide(hold.approval_id, decision)
    console = Console(width=80, record=True, color_system=None)
    console.print(decision_result(hold.approval_id, "approve", result.outcome, result.run,
                                  simulator_only.clock.now()))  # fmt: skip
    shown = " ".join(console.export_text().split())
    assert f"run {run.run_id} is now paused" in shown
    assert "not driven on here" in shown and "(config:elsewhere)" in shown
    assert f"carebound status {run.run_id}" in shown

    # a matching process drives it on: no such line then
    assert served.recover_runs().recovered == [run.run_id]
    driven = served.get(run.run_id)
    console = Console(width=80, record=True, color_system=None)
    console.print(decision_result(hold.approval_id, "approve", "decided", driven,
                                  served.clock.now()))  # fmt: skip
    assert "not driven on here" not in console.export_text()


def test_a_runs_connectors_are_the_starters_identity(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner = Runner(redis_client, prefix=key_prefix)
    run = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert runner.get(run.run_id).record.connectors == "simulator"
    assert connectors_identity(simulated_connectors()) == "simulator"
    simulator = simulated_connectors()

    def plain_factory(run: RunContext) -> Any:  # a factory with no identity serves any run
        return simulator(run)

    assert connectors_identity(plain_factory) is None


def test_a_connectors_files_identity_is_where_its_systems_are() -> None:
    def identity(**data: Any) -> str:
        factory = ConfiguredConnectors(connectors_config(data))
        found = connectors_identity(factory)
        assert found is not None and found.startswith("config:")
        return found

    plain = identity(ehr=EHR)
    assert identity(ehr={**EHR, "retry": {"attempts": 2}, "timeouts": {"read_s": 5}}) == plain
    assert identity(ehr={"base_url": "https://ehr-test.example.org/fhir/r4"}) != plain
    assert identity(ehr=EHR, payer={"base_url": "https://payer.example.org/fhir"}) != plain
    assert identity(ehr=EHR, erp={"provider": "simulated"}) != plain


def test_a_file_of_notifications_only_leaves_runs_on_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # README: the [notify] table may be a file of its own, named by CAREBOUND_CONNECTORS, which
    # every process reads (a worker both notifies and drives runs).
    notify = tmp_path / "notify.toml"
    notify.write_text(
        '[notify]\nbase_url = "https://inbox.clinic.test"\n[[notify.webhooks]]\n'
        'role = "intake_coordinator"\nurl = "https://hooks.clinic.test/x"\n'
        'secret_env = "CB_HOOK"\n'
    )
    monkeypatch.setenv("CB_HOOK", "hook-secret-for-tests")
    assert connectors_identity(connectors_factory(notify)) == "simulator"
    monkeypatch.setenv("CAREBOUND_CONNECTORS", str(notify))
    assert connectors_identity(connectors_factory()) == "simulator"
    # An override naming a system makes it a connectors file again (and checked as one).
    monkeypatch.setenv("CAREBOUND_CONNECTORS__EHR__BASE_URL", EHR["base_url"])
    assert (connectors_identity(connectors_factory()) or "").startswith("config:")


def test_status_shows_the_connectors_a_run_needs(env: str, case_file: Path) -> None:
    started = cli_json("run", "--agent", "demo", "--case", str(case_file), "--requester", "ops")
    shown = cli("status", started["run_id"]).stdout
    assert re.search(r"connectors\s+simulator", shown)
    assert cli_json("status", started["run_id"])["record"]["connectors"] == "simulator"
