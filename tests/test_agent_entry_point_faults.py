"""Installed agents that are broken or clash: each is left out with a warning naming its entry
point and distribution, and every other agent stays known.

The distributions are real as far as ``importlib.metadata`` is concerned: a package and a
``.dist-info`` folder (METADATA, entry_points.txt) on ``sys.path``.
"""

from __future__ import annotations

import logging
import textwrap
import uuid
from pathlib import Path

import pytest

from carebound.agents import registry

SHIPPED = {"demo", "packet_builder", "reconciler", "referral_chaser", "referral_intake"}


def _distribution(site: Path, name: str, module: str, entries: dict[str, str]) -> None:
    """Install distribution ``name`` into ``site``: package ``name`` with ``module`` as its
    ``__init__``, declaring ``entries`` (entry point name -> attribute) as agents."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(textwrap.dedent(module))
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    points = "".join(f"{point} = {name}:{attr}\n" for point, attr in entries.items())
    (info / "entry_points.txt").write_text(f"[carebound.agents]\n{points}")


def _agent_module(agent_name: str) -> str:
    return f"""
    import dataclasses
    from carebound.agents.demo import DEMO
    AGENT = dataclasses.replace(DEMO, name={agent_name!r}, description="a service's agent")
    """


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A fresh site folder on ``sys.path``, and a tag that keeps its names unique."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder, uuid.uuid4().hex[:8]


def test_two_installed_agents_of_one_name_are_both_left_out(
    site: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, tag = site
    twin = f"svc_twin_{tag}"
    first, second = f"svc_one_{tag}", f"svc_two_{tag}"
    _distribution(folder, first, _agent_module(twin), {"twin_a": "AGENT"})
    _distribution(folder, second, _agent_module(twin), {"twin_b": "AGENT"})
    _distribution(folder, f"svc_ok_{tag}", _agent_module(f"svc_ok_{tag}"), {"ok": "AGENT"})

    with caplog.at_level(logging.WARNING, logger="carebound.agents"):
        agents = registry()

    # Which one won used to depend on the order of the distributions on sys.path, so one
    # process could park a hold with one package's agent and another decide it with the other's.
    assert twin not in agents
    assert set(agents) == {*SHIPPED, f"svc_ok_{tag}"}
    warning = caplog.text
    assert f"'{twin}'" in warning
    assert "'twin_a'" in warning and "'twin_b'" in warning
    assert first in warning and second in warning


def test_a_broken_entry_point_is_named_with_its_distribution(
    site: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, tag = site
    broken = f"svc_broken_{tag}"
    _distribution(
        folder, broken, 'raise ImportError("cannot import Jane Doe 1970-01-01")', {"bad": "AGENT"}
    )
    exits = f"svc_exits_{tag}"
    _distribution(folder, exits, "import sys\nsys.exit(3)\n", {"exits": "AGENT"})
    wrong = f"svc_wrong_{tag}"
    _distribution(folder, wrong, "AGENT = 42\n", {"wrong": "AGENT"})
    clash = f"svc_clash_{tag}"
    _distribution(folder, clash, _agent_module("demo"), {"fake_demo": "AGENT"})

    with caplog.at_level(logging.WARNING, logger="carebound.agents"):
        agents = registry()  # a package that exits on import does not end the process

    assert set(agents) == SHIPPED
    assert agents["demo"].description != "a service's agent"
    lines = caplog.text.splitlines()
    for point, distribution, why in (
        ("bad", broken, "ImportError"),
        ("exits", exits, "SystemExit"),
        ("wrong", wrong, "int, not an AgentDefinition"),
        ("fake_demo", clash, "may not replace agent 'demo'"),
    ):
        assert any(
            f"'{point}'" in line and distribution in line and why in line for line in lines
        ), (point, caplog.text)
    assert "Jane Doe" not in caplog.text  # an import error's message is not logged


def test_an_installed_agent_without_a_plain_name_is_left_out(
    site: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, tag = site
    odd = f"svc_odd_{tag}"
    module = """
    import dataclasses
    from carebound.agents.demo import DEMO
    NUMBER = dataclasses.replace(DEMO, name=42)
    EMPTY = dataclasses.replace(DEMO, name="")
    HIDDEN = dataclasses.replace(DEMO, name="demo\\u200b")
    """
    _distribution(folder, odd, module, {"number": "NUMBER", "empty": "EMPTY", "hidden": "HIDDEN"})

    with caplog.at_level(logging.WARNING, logger="carebound.agents"):
        agents = registry()

    # A name of 42 used to be registered, and every listing of agents (sorted) then failed:
    # 'carebound run' answered an internal error (exit 70) for every agent.
    assert set(agents) == SHIPPED
    assert sorted(agents)
    for point in ("number", "empty", "hidden"):
        assert any(
            f"'{point}'" in line and odd in line and "name" in line
            for line in caplog.text.splitlines()
        ), (point, caplog.text)


def test_a_process_logs_an_installed_agents_problem_once(
    site: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every Runner reads the registry: a command that made two printed each warning twice."""
    folder, tag = site
    broken = f"svc_twice_{tag}"
    _distribution(folder, broken, "raise ImportError('no')", {"twice": "AGENT"})
    with caplog.at_level(logging.WARNING, logger="carebound.agents"):
        assert set(registry()) >= SHIPPED
        assert set(registry()) >= SHIPPED
    assert caplog.text.count("'twice'") == 1


def test_carebound_agents_lists_what_this_process_can_run_and_what_was_left_out(
    site: tuple[Path, str],
) -> None:
    """An operator who installed a package sees whether its agent loaded, and why not."""
    import json

    from typer.testing import CliRunner

    from carebound.cli import app

    folder, tag = site
    good, broken = f"svc_good_{tag}", f"svc_bad_{tag}"
    _distribution(folder, good, _agent_module(good), {"good": "AGENT"})
    _distribution(folder, broken, 'raise ImportError("Jane Doe 1970-01-01")', {"bad": "AGENT"})

    listed = CliRunner().invoke(app, ["agents", "--json"])
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.stdout)
    sources = {agent["name"]: agent["source"] for agent in found["agents"]}
    assert {name for name, source in sources.items() if source == "carebound"} == SHIPPED
    assert good in sources[good] and "'good'" in sources[good]
    assert [p for p in found["left_out"] if broken in p] == [
        f"agent entry point 'bad' ({broken}:AGENT, from {broken}) did not load: ImportError"
    ]
    shown = CliRunner().invoke(app, ["agents"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert good in shown.stdout and "shipped" in shown.stdout
    assert f"left out: agent entry point 'bad' ({broken}:AGENT" in shown.stdout
    assert "Jane" not in listed.stdout + shown.stdout + shown.stderr
