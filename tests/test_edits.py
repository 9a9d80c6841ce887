"""Edits: tool argument models refuse unknown fields, a refused edit names the field and the
fields that exist, and reviewers see what an edit changed (CLI output and the decision record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from carebound.agents import registry
from carebound.cli import ExitCode
from carebound.tools import ToolContext, ToolDefinitionError, tool
from tests.test_cli import FAX, cli


def _models(schema: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and every model nested in its fields."""
    found: list[type[BaseModel]] = [schema]
    for field in schema.model_fields.values():
        stack: list[Any] = [field.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel) and ann not in found:
                found.extend(m for m in _models(ann) if m not in found)
            stack.extend(getattr(ann, "__args__", ()))
    return found


def test_every_shipped_tool_refuses_unknown_arguments() -> None:
    specs = {spec.name: spec for agent in registry().values() for spec in agent.tools.values()}
    assert len(specs) >= 15
    for name, spec in specs.items():
        for model in _models(spec.args_schema):
            assert model.model_config.get("extra") == "forbid", f"{name}: {model.__name__}"
        with pytest.raises(ValidationError) as caught:
            spec.validate({"nonsense": 1})
        assert any(e["type"] == "extra_forbidden" for e in caught.value.errors()), name


class LooseArgs(BaseModel):
    """Arguments that (wrongly) accept unknown fields."""

    to: str


def test_a_tool_whose_args_allow_extra_fields_is_a_definition_error() -> None:
    with pytest.raises(ToolDefinitionError, match="LooseArgs must refuse unknown fields"):

        @tool(scope="outreach:fax.send", effect="external")
        def loose(ctx: ToolContext, args: LooseArgs) -> None:
            """Accepts anything."""


def test_edit_with_an_unknown_field_is_refused_and_names_the_fields(
    env: str, case_file: Path
) -> None:
    report = json.loads(
        cli(
            "run", "--agent", "demo", "--case", str(case_file), "--requester", "ops", "--json"
        ).stdout
    )
    approval, run_id = report["pending"][0]["approval_id"], report["run_id"]
    jordan = ("--reviewer", "jordan", "--role", "intake_coordinator")
    refused = cli("edit", approval, *jordan, "--set", "nonsense=1", code=ExitCode.REFUSED)
    assert "unknown field 'nonsense'" in refused.stderr
    assert "document_code, note, to" in refused.stderr  # the fields that exist
    # The typo did not approve the proposal: the hold is still pending.
    status = json.loads(cli("status", run_id, "--json").stdout)
    assert status["record"]["status"] == "paused"
    assert json.loads(cli("inbox", "--json").stdout)["approvals"][0]["approval_id"] == approval
    assert FAX  # the call's recipient is untouched (checked in the diff test)


def _start_demo(case_file: Path) -> tuple[str, str]:
    report = json.loads(
        cli(
            "run", "--agent", "demo", "--case", str(case_file), "--requester", "ops", "--json"
        ).stdout
    )
    return report["pending"][0]["approval_id"], report["run_id"]


def _decisions(run_id: str) -> list[dict[str, Any]]:
    """The details of the run's decision events, as stored (the CLI's audit view masks free
    text unless revealed)."""
    import os

    import redis

    from carebound import Runner

    client = redis.Redis.from_url(os.environ["CAREBOUND_REDIS_URL"])
    try:
        runner = Runner(client, prefix=os.environ["CAREBOUND_PREFIX"])
        return [dict(e.detail) for e in runner.audit(run_id) if e.action == "decision"]
    finally:
        client.close()


def _decision_event(run_id: str) -> dict[str, Any]:
    [detail] = _decisions(run_id)
    return detail


def test_an_edit_shows_its_diff_and_the_audit_event_holds_the_whole_decision(
    env: str, case_file: Path
) -> None:
    approval, run_id = _start_demo(case_file)
    jordan = ("--reviewer", "jordan", "--role", "intake_coordinator")
    edited = cli("edit", approval, *jordan, "--set", "note=Fax it today.", "--note", "urgent")
    assert "changed (before -> after):" in edited.stdout
    assert "note: Please fax the most recent progress note. -> Fax it today." in edited.stdout
    detail = _decision_event(run_id)
    assert detail["decision"] == "edit" and detail["outcome"] == "ok"
    assert detail["note"] == "urgent"
    assert detail["edit.note.before"] == "Please fax the most recent progress note."
    assert detail["edit.note.after"] == "Fax it today."
    assert "edit.to.before" not in detail  # unchanged arguments are not in the diff
    assert detail["channel"] == "library" or detail["channel"] == "cli"
    assert detail["principal"] == "jordan"
    assert detail["authenticated"] is False
    assert detail["role"] == "intake_coordinator"
    shown = json.loads(cli("show", approval, "--json").stdout)["approval"]["record"]
    assert shown["changes"] == [
        {
            "field": "note",
            "before": "Please fax the most recent progress note.",
            "after": "Fax it today.",
            "phi": False,
        }
    ]


def test_edit_json_output_lists_the_changes(env: str, case_file: Path) -> None:
    approval, _ = _start_demo(case_file)
    out = json.loads(
        cli(
            "edit", approval, "--reviewer", "jordan", "--role", "intake_coordinator",
            "--set", "note=Call first.", "--json",
        ).stdout
    )  # fmt: skip
    [change] = out["changes"]
    assert (change["field"], change["after"], change["phi"]) == ("note", "Call first.", False)


def test_reject_and_escalate_events_carry_reason_note_and_target(env: str, case_file: Path) -> None:
    approval, run_id = _start_demo(case_file)
    casey = ("--reviewer", "casey", "--role", "intake_coordinator")
    cli("escalate", approval, *casey, "--to-role", "supervisor", "--note", "needs a lead")
    cli(
        "reject", approval, "--reviewer", "jordan", "--role", "supervisor",
        "--reason", "wrong office", "--note", "checked the chart",
    )  # fmt: skip
    up, down = _decisions(run_id)
    assert up["decision"] == "escalate" and up["to_role"] == "supervisor"
    assert up["note"] == "needs a lead" and up["principal"] == "casey"
    assert down["decision"] == "reject" and down["reason"] == "wrong office"
    assert down["note"] == "checked the chart" and down["role"] == "supervisor"
    assert "authenticated" in down and "channel" in down


def test_a_phi_argument_is_never_copied_into_the_audit_trail(
    make_runner: Any, redis_client: Any
) -> None:
    from carebound import Edit
    from carebound.tools.connectors import WorldSpec

    case = json.loads(Path("scenarios/cases/reconcile_dob_swap.json").read_text())
    ehr = json.loads(Path("scenarios/ehr/reconcile_dob_swap.json").read_text())
    runner = make_runner()
    view = runner.start(
        "reconciler", case, requester="sam", world=WorldSpec.from_bundles(ehr, None)
    )
    request = view.pending.request
    assert request.tool == "reconcile_fix_demographic" and request.args["field"] == "birthDate"
    old_value = request.args["value"]
    new_value = "1980-04-08" if old_value != "1980-04-08" else "1980-04-09"
    edit = Edit(
        reviewer="casey", role="intake_coordinator", args_hash=request.args_hash,
        args={**request.args, "value": new_value},
    )  # fmt: skip
    result = runner.decide(request.approval_id, edit)
    assert [(c.field, c.phi) for c in result.changes] == [("value", True)]
    [event] = [e for e in runner.audit(request.run_id) if e.action == "decision"]
    text = json.dumps(event.detail)
    assert new_value not in text and old_value not in text
    assert event.detail["edit.value.before"] == (
        f"ref:approval/{request.approval_id}#proposed.value"
    )
    assert event.detail["edit.value.after"] == f"ref:approval/{request.approval_id}#decision.value"
    # The values are where the references say: the approval record.
    record = runner.approval(request.approval_id)
    assert record.request.args["value"] == old_value
    assert record.record is not None and isinstance(record.record.decision, Edit)
    assert record.record.decision.args["value"] == new_value
