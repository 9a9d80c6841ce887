"""Reviewer ids are compared in one normal form: separation of duties and the directory cannot be
dodged with case, spacing, fullwidth letters or invisible characters (real CLI, real Redis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from carebound.cli import ExitCode
from carebound.guardrails import load_policy_pack
from tests.test_cli import cli

CASEY_VARIANTS = [
    "Casey",
    "casey ",
    "CASEY",
    "\tcasey",
    "\uff43\uff41\uff53\uff45\uff59",  # fullwidth casey
    "\uff23\uff41\uff53\uff45\uff59",  # fullwidth Casey
    "casey\u200b",  # zero-width space: refused at start
]


def start(case_file: Path, requester: str, code: int = 0) -> Result:
    return cli(
        "run", "--agent", "demo", "--case", str(case_file), "--requester", requester, "--json",
        code=code,
    )  # fmt: skip


@pytest.mark.parametrize("requester", CASEY_VARIANTS, ids=ascii)
def test_a_run_started_by_a_variant_of_casey_cannot_be_approved_by_casey(
    env: str, case_file: Path, requester: str
) -> None:
    if "\u200b" in requester:
        refused = start(case_file, requester, code=ExitCode.BAD_INPUT)
        assert "U+200B" in refused.stderr and "requester" in refused.stderr
        assert json.loads(cli("runs", "--json").stdout)["runs"] == []
        return
    report = json.loads(start(case_file, requester).stdout)
    status = json.loads(cli("status", report["run_id"], "--json").stdout)
    assert status["record"]["requester"] == "casey"
    approval = report["pending"][0]["approval_id"]
    own = cli(
        "approve", approval, "--reviewer", "casey", "--role", "intake_coordinator",
        code=ExitCode.REFUSED,
    )  # fmt: skip
    assert "separation of duties" in own.stderr
    assert json.loads(cli("status", report["run_id"], "--json").stdout)["record"]["status"] == (
        "paused"
    )


def test_reviewer_ids_are_normalised_at_decide(env: str, case_file: Path) -> None:
    report = json.loads(start(case_file, "casey").stdout)
    approval = report["pending"][0]["approval_id"]
    role = ("--role", "intake_coordinator")
    for variant in ("CASEY", " casey", "\uff43\uff41\uff53\uff45\uff59"):
        own = cli("approve", approval, "--reviewer", variant, *role, code=ExitCode.REFUSED)
        assert "separation of duties" in own.stderr
    invisible = cli(
        "approve", approval, "--reviewer", "jordan\u200b", *role, code=ExitCode.BAD_INPUT
    )
    assert "U+200B" in invisible.stderr
    # A directory id typed in another case is the same person, stored in the normal form.
    out = json.loads(cli("approve", approval, "--reviewer", "Jordan ", *role, "--json").stdout)
    assert out["outcome"] == "decided"
    shown = json.loads(cli("show", approval, "--json").stdout)["approval"]
    assert shown["record"]["decided_by"] == "jordan"
    assert shown["record"]["decision"]["reviewer"] == "jordan"


def test_pack_directory_ids_are_normalised_at_load(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(
        "name: p\nversion: '1'\nreviewers:\n  - {id: ' Casey ', name: C, roles: [intake]}\n",
        encoding="utf-8",
    )
    pack = load_policy_pack(path)
    assert [r.id for r in pack.reviewers] == ["casey"]
    assert pack.reviewer("CASEY") is not None
    assert pack.reviewer("\uff43\uff41\uff53\uff45\uff59") is not None
    path.write_text(
        "name: p\nversion: '1'\nreviewers:\n"
        "  - {id: casey, name: C, roles: [intake]}\n  - {id: Casey, name: D, roles: [intake]}\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="duplicate reviewer id"):
        load_policy_pack(path)
