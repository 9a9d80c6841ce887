"""The read-only commands answer without LangGraph or a Runner, and show what a Runner shows.

``inbox``, ``show``, ``runs``, ``status``, ``audit``, ``reviewers`` and ``server status`` read
the stores directly (``carebound.cli._reader``); their speed is measured by
``benchmarks/cli_speed.py``, not here. These tests pin what makes them fast (the modules a
command process loads) and that the short path shows the same thing as the Runner's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound._phi import PhiPolicy
from carebound._phi_table import table_json
from carebound.agents import registry
from carebound.cli._reader import StoreReader
from carebound.state.keys import run_key
from tests.conftest import SCENARIOS
from tests.test_cli import cli_json

HEAVY = ("langgraph", "langchain", "langchain_core")

_PROBE = """
import json, sys
from carebound.cli import main
codes = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["carebound", *args]
    try:
        main()
    except SystemExit as exc:
        codes.append(exc.code or 0)
    else:
        codes.append(0)
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"codes": codes, "loaded": loaded}), file=sys.stderr)
"""


def _loaded(commands: list[list[str]], env: dict[str, str]) -> list[str]:
    """The top-level packages one process loaded running ``carebound ARGS`` for each of
    ``commands`` in turn (each must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["codes"] == [0] * len(commands), done.stderr
    return list(report["loaded"])


def test_read_only_commands_load_no_langgraph(
    env: str, make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    runner = make_runner()
    run = runner.start("demo", demo_case, requester="sam", world=demo_world)
    approval = run.pending.request.approval_id
    commands = [
        ["inbox"],
        ["inbox", "--json"],
        ["show", approval],
        ["show", approval, "--json"],
        ["runs"],
        ["status", run.run_id],
        ["status", run.run_id, "--json"],
        ["audit", run.run_id],
        ["audit", run.run_id, "--verify"],
        ["reviewers"],
        ["server", "status"],
    ]
    environ = dict(os.environ)
    heavy = [name for name in _loaded(commands, environ) if name in HEAVY]
    assert heavy == [], f"the read-only commands loaded {heavy}"
    # the check can fail: a write builds the Runner, and with it LangGraph
    approve = ["approve", approval, "--reviewer", "casey", "--role", "intake_coordinator"]
    assert "langgraph" in _loaded([approve], environ)


def test_read_only_commands_load_no_fhir_models(
    env: str, make_runner: Any, demo_case: dict[str, Any], demo_world: Any
) -> None:
    """fhir.resources (a second of imports) loads with the connectors and the agents; the
    read-only commands need neither (``status`` and ``reviewers`` loaded it through the tool
    types, issue 17)."""
    runner = make_runner()
    run = runner.start("demo", demo_case, requester="sam", world=demo_world)
    commands = [["status", run.run_id], ["status", run.run_id, "--json"], ["reviewers"]]
    commands += [["inbox"], ["runs"], ["audit", run.run_id], ["server", "status"]]
    assert "fhir" not in _loaded(commands, dict(os.environ))
    # the check can fail: a write builds the Runner, and with it the agents and FHIR models
    approval = run.pending.request.approval_id
    approve = ["approve", approval, "--reviewer", "casey", "--role", "intake_coordinator"]
    assert "fhir" in _loaded([approve], dict(os.environ))


def test_pinned_phi_table_masks_as_the_agents_do() -> None:
    for name, definition in registry().items():
        live = PhiPolicy(definition.tools)
        pinned = PhiPolicy.from_table_json(table_json(definition.tools))
        for tool, spec in definition.tools.items():
            assert pinned.tool_touches_phi(tool) == live.tool_touches_phi(tool), (name, tool)
            for arg in spec.args_schema.model_fields:
                assert pinned.arg_is_phi(tool, arg) == live.arg_is_phi(tool, arg), (tool, arg)
        assert pinned.tool_touches_phi("no_such_tool")  # unknown tools stay masked


def test_show_and_audit_of_a_run_without_a_pinned_table(
    env: str, make_runner: Any, demo_case: dict[str, Any], demo_world: Any, redis_url: str
) -> None:
    """A run started before runs pinned their PHI table is masked the same way (the command
    asks a Runner for the agent's tools)."""
    runner = make_runner()
    run = runner.start("demo", demo_case, requester="sam", world=demo_world)
    approval = run.pending.request.approval_id
    pinned_show = cli_json("show", approval)
    pinned_audit = cli_json("audit", run.run_id)
    client = redis.Redis.from_url(redis_url)
    assert client.hdel(run_key(env, run.run_id, "run"), "phi") == 1
    client.close()
    assert cli_json("show", approval) == pinned_show
    assert cli_json("audit", run.run_id) == pinned_audit
    assert pinned_show["approval"]["request"]["args"]["to"] == "•••"  # the fax number


def _scenario_files() -> list[Path]:
    return sorted(p for p in SCENARIOS.glob("*.yaml"))


def test_status_reads_what_the_runner_reads(redis_client: redis.Redis, key_prefix: str) -> None:
    """For the run of every shipped scenario, the reader's view (no LangGraph) equals the
    Runner's, and is read on the short path (not given up to the Runner)."""
    from carebound import Runner
    from carebound.scenario import run_scenario

    run_ids = []
    for path in _scenario_files():
        try:
            result = run_scenario(path, redis_client, prefix=key_prefix)
        except Exception:  # negative scenarios refuse their input: nothing to compare
            continue
        if result.report.run_id:
            run_ids.append(result.report.run_id)
    assert len(run_ids) >= 8
    reader = StoreReader(redis_client, prefix=key_prefix)
    runner = Runner(redis_client, prefix=key_prefix)
    for run_id in run_ids:
        fast = reader.run_view(run_id)
        assert fast is not None, f"{run_id}: the short path gave up"
        slow = runner.get(run_id)
        assert fast.model_dump(exclude={"results"}) == slow.model_dump(exclude={"results"})


@pytest.mark.parametrize("args", [["status", "nope"], ["audit", "nope"], ["show", "nope-1"]])
def test_unknown_ids_exit_5_on_the_short_path(env: str, args: list[str]) -> None:
    from tests.test_cli import cli

    result = cli(*args, code=5)
    assert "no " in result.stderr


def test_an_inbox_role_no_reviewer_holds_is_pointed_out(env: str, case_file: Path) -> None:
    """A misspelt role shows an empty inbox: stderr says no reviewer holds it (the web inbox
    refuses such a role); a real role with nothing waiting says nothing more."""
    from tests.test_cli import cli, start_demo

    start_demo(case_file)  # a hold for intake_coordinator
    typo = cli("inbox", "--role", "intake_cordinator")
    assert "no reviewer of policy pack default holds role 'intake_cordinator'" in typo.stderr
    assert "intake_coordinator" in typo.stderr  # the roles that exist
    assert json.loads(cli("inbox", "--role", "intake_cordinator", "--json").stdout) == {
        "approvals": [],
        "parked": [],
    }
    assert "no reviewer" not in cli("inbox", "--role", "billing").stderr
    assert "no reviewer" not in cli("inbox", "--role", "intake_coordinator").stderr
