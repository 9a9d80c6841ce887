"""A hold's request, a run's case and a completed effect's ledger entry are stored deflated
against a dictionary of their kind (``carebound.state.stored_json``, issue 17); every form
written before (plain JSON, ``~z:`` deflated in base64 or base85) still reads, end to end."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
import redis

from carebound import Approve, Runner
from carebound.state import deflate, stored_json
from carebound.state.runs import RunStore

FORMS = {"request": stored_json.REQUEST, "case": stored_json.CASE,
         "ledger entry": stored_json.LEDGER_ENTRY}  # fmt: skip


def _base85(text: str) -> str:
    """How deflated values were written before base64 (no dictionary)."""
    old = zlib.compressobj(6, zlib.DEFLATED, -15)
    return "~z:" + base64.b85encode(old.compress(text.encode()) + old.flush()).decode()


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_every_form_written_before_still_reads(kind: str) -> None:
    form = FORMS[kind]
    text = json.dumps({"kind": kind, "value": "x" * 300, "n": [1, 2, 3]})
    new = form.pack(text)
    assert new.startswith(form.marker)
    for stored in (new, text, deflate.pack(text, marker="~z:"), _base85(text)):
        assert form.unpack(stored) == text
        assert form.unpack(stored.encode()) == text.encode()
    with pytest.raises(ValueError, match="does not inflate"):
        form.unpack(form.marker + ".////")


def _hold(runner: Runner, run_id: str) -> Any:
    view = runner.get(run_id)
    assert view.pending is not None
    return view.pending.request


def test_a_runs_case_and_hold_take_less_than_plain_deflate_and_old_forms_resume(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    runner: Runner = make_runner()
    ids = [runner.start("demo", demo_case, requester="sam", world=demo_world).run_id
           for _ in range(2)]  # fmt: skip
    holds = [_hold(runner, run_id) for run_id in ids]
    case_key = f"{key_prefix}:{{{ids[0]}}}:case"
    hold_key = f"{key_prefix}:{{{ids[0]}}}:approval:{holds[0].approval_id}"
    case, request = redis_client.get(case_key), redis_client.get(hold_key + ":request")
    assert case is not None and case.startswith(b"~c1:")
    assert request is not None and request.startswith(b"~r1:")
    # the form written before: deflated without a dictionary (the case with spaced JSON)
    old_case = deflate.pack(json.dumps(demo_case), marker="~z:")
    old_request = deflate.pack(holds[0].model_dump_json(), marker="~z:")
    assert len(case) < 0.6 * len(old_case) and len(request) < 0.6 * len(old_request)
    redis_client.set(case_key, old_case)
    redis_client.hset(hold_key, "request", old_request)  # where holds kept it before
    redis_client.delete(hold_key + ":request")
    assert RunStore(redis_client, prefix=key_prefix).case(ids[0]) == demo_case
    assert {a.request.approval_id for a in runner.pending()} == {h.approval_id for h in holds}
    for hold in holds:
        decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
        assert runner.decide(hold.approval_id, decision).run.status == "waiting"
    assert runner.get(ids[0]).status == "waiting" and runner.verify(ids[0]).ok


def test_a_completed_effect_takes_less_than_plain_deflate_and_an_old_one_replays(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    from datetime import UTC, datetime

    from carebound.state.ledger import EffectLedger

    ledger = EffectLedger(redis_client, prefix=key_prefix)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = {"target": "Patient/ehr-1", "field": "address", "before": "42 Birch Lane",
              "after": "42 BIRCH LN", "paths": ["address.0.line"]}  # fmt: skip
    assert ledger.reserve("run-s", "k1", "reconcile_fix_demographic", now) is None
    entry = ledger.complete(
        "run-s", "k1", "reconcile_fix_demographic", result, reserved_at=now, now=now
    )
    key = f"{key_prefix}:{{run-s}}:ledger"
    stored = redis_client.hget(key, "k1")
    old = deflate.pack(entry.model_dump_json(), marker="~z:")
    assert stored is not None and stored.startswith(b"~l1:") and len(stored) < 0.75 * len(old)
    redis_client.hset(key, "k1", old)
    replay = ledger.reserve("run-s", "k1", "reconcile_fix_demographic", now)
    assert replay is not None and replay.status == "done" and replay.result == result
