"""A chart that changed after a fix was decided is never overwritten: the call is held again.

The reconciler binds each demographic fix to the value it compared (``before``); the tool
refuses to write over anything else (and, on a FHIR server, writes with ``If-Match`` on the
version it read). The engine turns that ``VersionConflictError`` into a new hold (pack rule
REC-6) on the chart as it is now, instead of an error or a retry.
"""

from __future__ import annotations

from carebound import Runner, RunView
from carebound.approvals import ApprovalRequest, run_id_of
from tests.test_reconciler_agent import RunnerFactory, approve, dob_run, world
from tests.test_retention import assert_retention


def _pending(view: RunView) -> ApprovalRequest:
    assert view.pending is not None, view.record.summary
    return view.pending.request


def _edit_chart(runner: Runner, view: RunView, birth_date: str) -> None:
    """Someone else corrects the chart while the fix waits for its reviewer."""
    world(runner, view).ehr.update_fields(
        "Patient", "ehr-osei", {"birthDate": birth_date}, idempotency_key="someone-else"
    )


def test_a_chart_changed_after_the_decision_is_held_again_not_overwritten(
    make_runner: RunnerFactory,
) -> None:
    runner, view = dob_run(make_runner)
    first = _pending(view)
    assert first.args["before"] == "1980-07-04"
    _edit_chart(runner, view, "1980-07-14")

    view = approve(runner, view)

    assert view.status == "paused"
    again = _pending(view)
    assert again.approval_id != first.approval_id
    assert (again.tool, again.rule_id, again.required_role) == (
        "reconcile_fix_demographic",
        "REC-6",
        "intake_coordinator",
    )
    assert again.args == {**first.args, "before": "1980-07-14"}
    # the held-again approval lives under the run's own hash tag (one Cluster slot, found by
    # retention and purge), not under a tag of its own
    assert run_id_of(again.approval_id) == view.run_id
    assert list(runner.client.scan_iter(match=f"{runner.prefix}:{{{view.run_id}-*")) == []
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-07-14"
    effects = [e for e in runner.audit(view.run_id) if e.action == "effect"]
    assert effects[-1].outcome == "failed"
    assert effects[-1].detail["error_class"] == "VersionConflictError"

    view = approve(runner, view)

    assert view.status == "completed", view.record.summary
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-04-07"
    assert assert_retention(runner.client, runner.prefix, 30 * 86400) == 1


def test_a_chart_already_holding_the_approved_value_is_not_held_again(
    make_runner: RunnerFactory,
) -> None:
    runner, view = dob_run(make_runner)
    _edit_chart(runner, view, "1980-04-07")  # someone made the same correction meanwhile

    view = approve(runner, view)

    assert view.status == "completed", view.record.summary
    assert world(runner, view).ehr.read("Patient", "ehr-osei")["birthDate"] == "1980-04-07"
