"""A run an older carebound stored (before a run's record was kept field by field: one
``record`` JSON field, the pack and the case inline in the run's hash) is not read by this
version. Its hold still shows in the inbox, so deciding it, or reading the run, says so,
instead of "no run" for a run that is there, and stores nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from carebound import Approve, NotFoundError, Runner


def _as_an_older_carebound_stored_it(client: redis.Redis, prefix: str, run_id: str) -> None:
    """Rewrite a run's hash in the form carebound kept before (as b41d175 wrote it)."""
    key = f"{prefix}:{{{run_id}}}:run"
    fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    record = {"run_id": run_id, "agent": fields["agent"], "requester": fields["requester"],
              "status": "paused", "policy": fields["policy"], "created_at": "2026-03-02T15:00:00Z",
              "updated_at": "2026-03-02T15:00:00Z", "summary": "",
              "pending_approval": fields["pending_approval"]}  # fmt: skip
    client.delete(key)
    client.hset(key, mapping={"record": json.dumps(record), "policy": "{}", "case": "{}"})


def test_a_run_an_older_version_stored_is_named_as_such_and_left_as_it_is(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    first = Runner(redis_client, prefix=key_prefix)
    view = first.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request
    _as_an_older_carebound_stored_it(redis_client, key_prefix, view.run_id)
    runner = Runner(redis_client, prefix=key_prefix)  # a process that never saw the run
    for read in (
        lambda: runner.get(view.run_id),
        lambda: runner.decide(
            request.approval_id,
            Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash),
        ),
    ):
        with pytest.raises(NotFoundError, match="stored by an older carebound"):
            read()
    assert [p.request.approval_id for p in runner.pending()] == [request.approval_id]
    stored = set(redis_client.hkeys(f"{key_prefix}:{{{view.run_id}}}:run"))
    assert stored == {b"record", b"policy", b"case"}
