"""A service's own agent, installed through the ``carebound.agents`` entry-point group, is
started from a script in one process and its hold is approved with ``carebound approve`` in
another: the CLI never saw the service's code, only the installed distribution's metadata.

The distribution is real as far as ``importlib.metadata`` is concerned: a package and a
``.dist-info`` folder (METADATA, entry_points.txt) on the child processes' ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from carebound.guardrails import load_policy_pack

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "scenarios" / "cases" / "hello_referral.json"

AGENT_MODULE = '''
"""A service's agent: the demo's plan and tools under the service's own name."""
import dataclasses

from carebound.agents.demo import DEMO

FAX_BOT = dataclasses.replace(DEMO, name="svc_fax_bot", description="the service's fax bot")
'''

START_SCRIPT = """
import json, os, sys
from pathlib import Path

from carebound import Runner
from carebound.store import connect
from carebound.tools.connectors import WorldSpec

case = json.loads(Path(sys.argv[1]).read_text())
prefix = os.environ["CAREBOUND_PREFIX"]
runner = Runner(connect().client(), prefix=prefix, policy=sys.argv[2])
view = runner.start("svc_fax_bot", case, requester="sam", world=WorldSpec.from_bundles(case, None))
print(json.dumps({"run": view.run_id, "status": view.status,
                  "approval": view.pending.request.approval_id}))
"""


def _install_service(site: Path) -> None:
    package = site / "svc_agents"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(AGENT_MODULE))
    info = site / "svc_agents-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: svc-agents\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[carebound.agents]\nfax_bot = svc_agents:FAX_BOT\n")


def _pack_with_grant(path: Path) -> None:
    """The default pack, with the service agent granted what the demo agent may do."""
    raw = yaml.safe_load((ROOT / "guardrails" / "packs" / "default.yaml").read_text())
    raw["agents"]["svc_fax_bot"] = raw["agents"]["demo"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_policy_pack(path)  # a valid pack


def test_an_installed_agents_hold_is_approved_from_the_cli_in_another_process(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    _install_service(site)
    pack = tmp_path / "pack.yaml"
    _pack_with_grant(pack)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CAREBOUND_")},
        "CAREBOUND_REDIS_URL": redis_url,
        "CAREBOUND_PREFIX": key_prefix,
        "CAREBOUND_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(site),
        "COLUMNS": "200",
    }
    started = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, str(CASE), str(pack)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout.strip().splitlines()[-1])
    assert run["status"] == "paused"

    def cli(*args: str, with_service: bool = True) -> subprocess.CompletedProcess[str]:
        child = dict(env) if with_service else {k: v for k, v in env.items() if k != "PYTHONPATH"}
        return subprocess.run(
            [sys.executable, "-m", "carebound.cli", *args],
            env=child,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )

    # Without the service installed, the CLI cannot drive that agent's run: a clear refusal.
    missing = cli("approve", run["approval"], "--reviewer", "casey", "--role",
                  "intake_coordinator", with_service=False)  # fmt: skip
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "unknown agent 'svc_fax_bot'" in missing.stdout + missing.stderr

    approved = cli("approve", run["approval"], "--reviewer", "casey", "--role",
                   "intake_coordinator", "--json")  # fmt: skip
    assert approved.returncode == 0, approved.stdout + approved.stderr
    answer = json.loads(approved.stdout)
    assert (answer["decision"], answer["outcome"]) == ("approve", "decided")
    status = cli("status", run["run"], "--json")
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)["record"]
    assert record["agent"] == "svc_fax_bot"
    assert record["status"] == "waiting"  # the fax went out; the office's reply is awaited
