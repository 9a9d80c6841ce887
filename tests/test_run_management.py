"""Run management in the library (issue 17): search runs, cancel with an audited reason, purge
ended runs past a retention period with their audit chains archived, verifiably, first."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound import AlreadyDecidedError, Approve, Runner, RunStateError
from carebound._limits import InputLimitError
from carebound._phi import PhiPolicy
from carebound._principal import InvalidIdentifierError
from carebound.audit import verify_archive
from carebound.state.run_search import RunFilter


def _start(runner: Runner, case: Any, world: Any, requester: str = "sam") -> str:
    """Start a demo run a minute after the one before (runs list newest first)."""
    runner.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    return runner.start("demo", case, requester=requester, world=world).run_id


def _with_patient(case: Any, patient_id: str) -> Any:
    copy = json.loads(json.dumps(case))
    for entry in copy["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["id"] = patient_id
        for field in ("subject", "for"):
            if field in resource:
                resource[field] = {"reference": f"Patient/{patient_id}"}
    return copy


def test_search_by_status_agent_requester_patient_and_date(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    first = _start(runner, demo_case, demo_world, requester="sam")
    runner.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    second = _start(runner, _with_patient(demo_case, "pat-other"), demo_world, requester="alex")
    third = _start(runner, demo_case, demo_world, requester="alex")
    runner.cancel(third, by="ops", reason="duplicate referral")
    everyone = runner.search_runs(RunFilter())
    assert [r.run_id for r in everyone.runs] == [third, second, first]
    assert everyone.next_offset is None
    assert [r.run_id for r in runner.search_runs(RunFilter(status="cancelled")).runs] == [third]
    by_alex = runner.search_runs(RunFilter(requester="alex")).runs
    assert [r.run_id for r in by_alex] == [third, second]
    patient = runner.search_runs(RunFilter(patient_ref="Patient/pat-other")).runs
    assert [r.run_id for r in patient] == [second]
    created = runner.get(second).record.created_at
    since = runner.search_runs(RunFilter(created_from=created)).runs
    assert {r.run_id for r in since} == {second, third}
    before = runner.search_runs(RunFilter(created_to=created)).runs
    assert [r.run_id for r in before] == [first]
    assert runner.search_runs(RunFilter(agent="reconciler")).runs == []
    page = runner.search_runs(RunFilter(), limit=2)
    assert [r.run_id for r in page.runs] == [third, second] and page.next_offset == 2
    rest = runner.search_runs(RunFilter(), limit=2, offset=2)
    assert [r.run_id for r in rest.runs] == [first] and rest.next_offset is None


def test_cancel_is_audited_with_its_reason_masked_like_a_reviewers(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)
    pending = runner.get(run_id).pending
    assert pending is not None
    view = runner.cancel(run_id, by="ops", reason="scenario run in the real store")
    assert view.status == "cancelled"
    assert "scenario run" not in view.record.summary  # free text stays out of listings
    assert runner.pending() == []  # its hold left the inbox
    [event] = [e for e in runner.audit(run_id) if e.detail.get("status") == "cancelled"]
    assert event.actor.id == "ops"
    assert event.detail["reason"] == "scenario run in the real store"
    masked = PhiPolicy.for_agent(runner, "demo").event(event)
    assert masked.detail["reason"] == "•••"
    assert runner.verify(run_id).ok
    with pytest.raises(RunStateError, match="already ended"):
        runner.cancel(run_id, by="ops", reason="again")


def test_the_hold_of_a_cancelled_run_cannot_be_decided_any_more(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """Cancelling withdraws the run's pending hold: a reviewer who still has its id (a link,
    an inbox page read before) is told so, and no decision is recorded for a run that ended.
    Before, the approval said "approved" (exit 0) and the audit trail recorded it."""
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)
    pending = runner.get(run_id).pending
    assert pending is not None
    request = pending.request
    runner.cancel(run_id, by="ops", reason="duplicate referral")

    assert runner.approval(request.approval_id).status == "withdrawn"
    approve = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    with pytest.raises(AlreadyDecidedError, match="cancelled by ops"):
        runner.decide(request.approval_id, approve)
    assert [e for e in runner.audit(run_id) if e.action == "decision"] == []
    assert runner.get(run_id).status == "cancelled"
    assert runner.verify(run_id).ok


@pytest.mark.parametrize("by", ["", "   ", "ops\u200b"])
def test_a_cancel_by_nobody_is_refused_before_anything_changes(
    make_runner: Any, demo_case: Any, demo_world: Any, by: str
) -> None:
    """Who cancels is audited; an id the audit trail cannot take is refused first. Before,
    an empty one cancelled the run, then failed to audit it: a run stopped with no record of
    who or why ('cancelled by ')."""
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)
    with pytest.raises(InvalidIdentifierError):
        runner.cancel(run_id, by=by, reason="duplicate referral")
    view = runner.get(run_id)
    assert view.status == "paused" and view.pending is not None
    assert runner.pending() != []


def test_cancel_records_who_in_its_normal_form(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)
    view = runner.cancel(run_id, by="  Ops ", reason="duplicate referral")
    assert view.record.summary == "cancelled by ops"
    [event] = [e for e in runner.audit(run_id) if e.detail.get("status") == "cancelled"]
    assert event.actor.id == "ops"


def test_a_reason_too_long_to_audit_is_refused_before_anything_changes(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)
    with pytest.raises(InputLimitError, match="reason"):
        runner.cancel(run_id, by="ops", reason="x" * 201)
    assert runner.get(run_id).status == "paused"


def _cancelled(runner: Runner, case: Any, world: Any) -> str:
    run_id = _start(runner, case, world)
    runner.cancel(run_id, by="ops", reason="test run")
    return run_id


def _run_keys(client: redis.Redis, prefix: str, run_id: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{prefix}:{{{run_id}}}:*"))


def test_purge_archives_then_deletes_only_runs_ended_before_the_cutoff(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any,
    demo_world: Any, tmp_path: Path,
) -> None:  # fmt: skip
    runner: Runner = make_runner()
    old = _cancelled(runner, demo_case, demo_world)
    runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    recent = _cancelled(runner, demo_case, demo_world)
    parked = _start(runner, demo_case, demo_world)
    cutoff = runner.clock.now() - timedelta(days=30)
    dry = runner.purge(cutoff, archive=None, dry_run=True)
    assert dry.purged == [old] and _run_keys(redis_client, key_prefix, old)
    archive = tmp_path / "archive.jsonl"
    report = runner.purge(cutoff, archive=archive)
    assert report.purged == [old] and report.keys_deleted > 5
    assert _run_keys(redis_client, key_prefix, old) == []
    assert [r.run_id for r in runner.search_runs(RunFilter()).runs] == [parked, recent]
    assert _run_keys(redis_client, key_prefix, recent) and runner.get(parked).status == "paused"
    assert not redis_client.zscore(f"{key_prefix}:cp:threads", old)
    keyring = runner.audit_log.keyring
    verdicts = verify_archive(archive, keyring)
    assert list(verdicts) == [old] and verdicts[old].ok and verdicts[old].count >= 3
    # an archive edited afterwards does not verify
    line = json.loads(archive.read_text())
    line["entries"] = line["entries"][:-1]
    archive.write_text(json.dumps(line) + "\n")
    assert not verify_archive(archive, keyring)[old].ok


def test_purge_keeps_a_run_whose_audit_chain_is_broken(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any,
    demo_world: Any, tmp_path: Path,
) -> None:  # fmt: skip
    runner: Runner = make_runner()
    run_id = _cancelled(runner, demo_case, demo_world)
    stream = f"{key_prefix}:{{{run_id}}}:audit"
    first_id = redis_client.xrange(stream, count=1)[0][0]
    redis_client.xdel(stream, first_id)
    runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    report = runner.purge(runner.clock.now() - timedelta(days=30), archive=tmp_path / "a.jsonl")
    assert report.purged == [] and run_id in report.refused
    assert _run_keys(redis_client, key_prefix, run_id)


def test_show_of_a_cancelled_runs_hold_says_who_withdrew_it_and_no_countdown(
    env: str, key_prefix: str, redis_client: redis.Redis, demo_case: Any
) -> None:
    """``carebound show`` on the hold of a cancelled run says it was withdrawn, by whom and
    why, and counts down to no deadline: nobody is waited for any more."""
    from tests.test_cli import cli, cli_json
    from tests.test_workers import world_of

    runner = Runner(redis_client, prefix=key_prefix)
    view = runner.start("demo", demo_case, requester="sam", world=world_of(demo_case))
    assert view.pending is not None
    approval_id = view.pending.request.approval_id
    runner.cancel(view.run_id, by="olga", reason="duplicate referral")
    shown = " ".join(cli("show", approval_id).stdout.split())  # the panel wraps at 80 columns
    assert "withdrawn by carebound (withdrawn: the run was cancelled by olga)" in shown
    assert " in 1d " not in shown and "overdue" not in shown
    assert "no longer waited for (withdrawn)" in shown
    record = cli_json("show", approval_id)["approval"]["record"]
    assert record["status"] == "withdrawn" and "cancelled by olga" in record["decided_by"]


def test_a_start_with_a_run_id_already_taken_is_refused_and_changes_nothing(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any
) -> None:
    """``Runner.start(run_id=...)`` with the id of an existing run is refused before anything
    is written. Before, it overwrote that run's record (requester, case, status, created_at)
    while its checkpoints and audit trail stayed the first run's."""
    from tests.test_workers import world_of

    runner = Runner(redis_client, prefix=key_prefix)
    first = runner.start(
        "demo", demo_case, requester="sam", world=world_of(demo_case), run_id="intake-7"
    )
    assert first.status == "paused"
    with pytest.raises(RunStateError, match="intake-7") as refused:
        runner.start(
            "demo", demo_case, requester="eve", world=world_of(demo_case), run_id="intake-7"
        )
    # a RunStateError still; its code says which (the API answers it as 409 run_id_taken)
    assert refused.value.code == "run_id_taken" and refused.value.hint
    after = runner.get("intake-7")
    assert after.record.requester == "sam" and after.status == "paused"
    assert after.record.created_at == first.record.created_at
    assert [e.action for e in runner.audit("intake-7")].count("create") == 1
    assert not redis_client.exists(f"{key_prefix}:{{intake-7}}:claim"), "the refusal left a key"


def test_two_starts_naming_the_same_run_id_at_once_leave_one_run_and_refuse_the_other(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any
) -> None:
    """Two starts naming the same run id at the same moment: one is refused. Before, both
    passed the "no run has it" check (each before the other had written) and the later
    overwrote the earlier's record (requester, case) while the trail kept the earlier's. The
    interleaving is made exact: the second start runs whole while the first seeds its world,
    after its check and before its first write of the run."""
    from tests.test_workers import world_of

    first, second = Runner(redis_client, prefix=key_prefix), Runner(redis_client, prefix=key_prefix)
    seed = first._core.seed_world
    outcomes: list[str] = []

    def seed_after_a_rival_start(*args: Any, **kwargs: Any) -> None:
        try:
            second.start(
                "demo", demo_case, requester="eve", world=world_of(demo_case), run_id="intake-9"
            )
            outcomes.append("rival started")
        except RunStateError:
            outcomes.append("rival refused")
        seed(*args, **kwargs)

    first._core.seed_world = seed_after_a_rival_start  # type: ignore[method-assign]
    view = first.start(
        "demo", demo_case, requester="sam", world=world_of(demo_case), run_id="intake-9"
    )
    assert outcomes == ["rival refused"]
    assert view.status == "paused"
    stored = second.get("intake-9")
    assert stored.record.requester == "sam" and stored.record.created_at == view.record.created_at
    assert [e.actor.id for e in second.audit("intake-9") if e.action == "create"] == ["sam"]


def test_a_start_that_died_after_claiming_its_run_id_can_be_sent_again(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between claiming the id and storing the run leaves its claim: the same
    start sent again takes it over (the README: "a start that dies half-way leaves no run:
    start it again"), another start is still refused while the claim lasts."""
    from carebound.engine import start as start_module
    from tests.test_workers import world_of

    runner = Runner(redis_client, prefix=key_prefix)
    world = world_of(demo_case)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(start_module, "release_run_id", lambda *args: None)  # as a SIGKILL
    monkeypatch.setattr(runner._core, "seed_world", killed)
    with pytest.raises(SystemExit):
        runner.start("demo", demo_case, requester="sam", world=world, run_id="intake-11")
    assert redis_client.exists(f"{key_prefix}:{{intake-11}}:claim")
    monkeypatch.undo()
    with pytest.raises(RunStateError, match="claiming"):
        runner.start("demo", demo_case, requester="eve", world=world, run_id="intake-11")
    view = runner.start("demo", demo_case, requester="sam", world=world, run_id="intake-11")
    assert view.status == "paused" and view.record.requester == "sam"
    assert not redis_client.exists(f"{key_prefix}:{{intake-11}}:claim")


def test_purge_refuses_a_file_that_is_not_an_archive_and_deletes_nothing(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any,
    demo_world: Any, tmp_path: Path,
) -> None:  # fmt: skip
    """--archive naming the wrong file (an anchors file, a config) was appended to, and the
    runs deleted: the archive then did not verify as a whole. Now refused before any run
    goes; a real archive is appended to, its last line read from the end of the file."""
    from carebound.audit import AuditExportError
    from carebound.audit._archive import _last_line

    runner: Runner = make_runner()
    first = _cancelled(runner, demo_case, demo_world)
    runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    cutoff = runner.clock.now() - timedelta(days=30)
    wrong = tmp_path / "settings.toml"
    wrong.write_text('[notify]\nurl = "https://example.test"\n')
    with pytest.raises(AuditExportError, match="not an archive"):
        runner.purge(cutoff, archive=wrong)
    assert wrong.read_text() == '[notify]\nurl = "https://example.test"\n'
    assert _run_keys(redis_client, key_prefix, first)
    archive = tmp_path / "archive.jsonl"
    assert runner.purge(cutoff, archive=archive).purged == [first]
    second = _cancelled(runner, demo_case, demo_world)
    runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    with archive.open("a") as handle:
        handle.write("\n\n")  # blank lines after the last archive line are fine
    report = runner.purge(runner.clock.now() - timedelta(days=30), archive=archive)
    assert report.purged == [second]
    verdicts = verify_archive(archive, runner.audit_log.keyring)
    assert list(verdicts) == [first, second] and all(v.ok for v in verdicts.values())
    lines = [line for line in archive.read_bytes().splitlines() if line.strip()]
    assert _last_line(archive, block=7) == lines[-1]  # a line longer than a block
    assert _last_line(tmp_path / "missing.jsonl") is None


class _Died(BaseException):
    """Stands for the process dying (nothing catches it)."""


def test_a_cancel_that_dies_after_storing_the_status_has_audited_it(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    """The cancelled status and its audit event (who, why) go in one round trip: a process
    that died after storing the status (in the unmark and the waits that came before the
    event) left a cancelled run whose trail never said who cancelled it."""
    runner: Runner = make_runner()
    run_id = _start(runner, demo_case, demo_world)

    def die(*args: Any, **kwargs: Any) -> None:
        raise _Died

    runner._core.trips.unmark = die  # type: ignore[method-assign]
    with pytest.raises(_Died):
        runner.cancel(run_id, by="ops", reason="duplicate referral")
    survivor = make_runner()
    assert survivor.get(run_id).status == "cancelled"
    [event] = [e for e in survivor.audit(run_id) if e.detail.get("status") == "cancelled"]
    assert event.actor.id == "ops" and event.detail["reason"] == "duplicate referral"
    assert survivor.verify(run_id).ok


def test_an_archive_and_an_anchors_file_are_never_appended_to_each_other(
    make_runner: Any, demo_case: Any, demo_world: Any, tmp_path: Path
) -> None:
    """'audit export --out' took any file whose last line began with '{' (a purge archive),
    and a purge appended to any file at all: each now refuses the other's file."""
    from carebound.audit import AuditExportError, export_checkpoints

    runner: Runner = make_runner()
    run_id = _cancelled(runner, demo_case, demo_world)
    runner.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    anchors = tmp_path / "anchors.jsonl"
    assert export_checkpoints(runner.audit_log, [run_id], anchors, now=runner.clock.now()).written
    before = anchors.read_text()
    with pytest.raises(AuditExportError, match="not an archive"):
        runner.purge(runner.clock.now() - timedelta(days=30), archive=anchors)
    assert anchors.read_text() == before
    archive = tmp_path / "archive.jsonl"
    assert runner.purge(runner.clock.now() - timedelta(days=30), archive=archive).purged
    kept = archive.read_text()
    other = _cancelled(runner, demo_case, demo_world)
    with pytest.raises(AuditExportError, match="not a checkpoint"):
        export_checkpoints(runner.audit_log, [other], archive, now=runner.clock.now())
    assert archive.read_text() == kept
