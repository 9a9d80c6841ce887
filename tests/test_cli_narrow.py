"""Output that survives 80 columns (a default terminal, any pipe): ids whole and on one line,
ready to copy, no line wider than the terminal, the audit trail one event per block with its
full date, or ``--wide`` for a table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_cli import cli, cli_json, start_demo

WIDTH = 80


@pytest.fixture
def narrow(env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    return env


def _check(text: str, *ids: str) -> list[str]:
    lines = text.splitlines()
    for line in lines:
        assert len(line.rstrip()) <= WIDTH, f"wider than {WIDTH}: {line!r}"
    for whole in ids:
        assert any(re.search(rf"(?<![\w-]){re.escape(whole)}(?![\w-])", line) for line in lines), (
            f"{whole} is not printed whole on one line:\n{text}"
        )
    return lines


def test_ids_are_never_cut_at_80_columns(narrow: str, case_file: Path) -> None:
    report = start_demo(case_file, requester="a-requester-with-a-long-name")
    run_id, approval = report["run_id"], report["pending"][0]["approval_id"]
    ran = cli("run", "--agent", "demo", "--case", str(case_file), "--requester", "sam").stdout
    _check(ran)
    assert "…" not in ran
    _check(cli("inbox").stdout, approval)
    runs = cli("runs").stdout
    _check(runs, run_id)
    # a row too wide goes on indented: '... 2026-12-05 17:23 UTC  5s' then 'ago' at the left
    # edge looked like a row of its own
    for line in runs.splitlines():
        assert line.startswith((" ", "run ")) or re.match(r"r[0-9a-f]{12}  ", line), runs
    status = cli("status", run_id).stdout
    _check(status, approval)
    assert "…" not in status.split("Other findings")[0]
    _check(cli("show", approval).stdout, approval)
    cli("approve", approval, "--reviewer", "casey", "--role", "intake_coordinator")
    keys = [e["key"] for e in cli_json("status", run_id)["effects"]]
    assert keys  # the approved fax went through the effect ledger
    _check(cli("status", run_id).stdout, *keys)


def test_audit_is_one_block_per_event_with_full_dates(
    narrow: str, case_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = start_demo(case_file)["run_id"]
    events = cli_json("audit", run_id)["events"]
    trail = cli("audit", run_id).stdout
    lines = _check(trail)
    heads = [
        line for line in lines if re.match(r"^#\d+  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  ", line)
    ]
    assert len(heads) == len(events)
    year = events[0]["time"][:4]
    assert all(f"#{e['seq']}  {year}-" in trail for e in events)
    hold = next(e for e in events if e["action"] == "hold")
    assert hold["detail"]["approval_id"] in trail  # detail values are not cut to a column
    monkeypatch.setenv("COLUMNS", "200")
    wide = cli("audit", run_id, "--wide").stdout
    assert wide.splitlines()[0].split()[:3] == ["seq", "time", "(UTC)"]
    assert f" {year}-" in wide


def test_report_keeps_its_figures_at_80_columns_over_a_long_span(
    narrow: str, case_file: Path
) -> None:
    """A scenario (its virtual clock months ago) and a run today make the report span every
    day between: its bars (one per day) must not squeeze the figures' names and values out."""
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "hello_hold.yaml"
    cli("--store", "working", "run", str(scenario))
    start_demo(case_file)
    data = cli_json("report")
    assert len(data["daily"]["runs.started"]) > WIDTH, data["days"]
    lines = _check(cli("report").stdout)
    started = next((line for line in lines if "runs started" in line), None)
    assert started is not None, "\n".join(lines)
    assert re.search(rf"runs started\s+{data['runs']['started']}\s", started), started
    assert any("holds" in line for line in lines) and any("decisions" in line for line in lines)


def test_users_and_tokens_lists_fit_80_columns_with_names_whole(narrow: str) -> None:
    name = "svc-ehr-integration-bridge-of-the-north-campus"
    cli("tokens", "create", name, "--role", "intake_coordinator", "--role", "billing",
        "--scope", "read", "--scope", "reveal", "--scope", "decide")  # fmt: skip
    tokens = cli("tokens", "list").stdout
    _check(tokens, name)
    assert "billing, intake_coordinator" in tokens and "read, decide, reveal" in tokens
    users = cli("users", "list").stdout
    _check(users, "casey", "jordan")
    assert "intake_coordinator, supervisor" in users
