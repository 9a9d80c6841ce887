"""The decide path's Redis round trips stay at 6 with the fuller protocol (normalised ids, the
approver identity, an edit's diff and the decision event all ride in the existing trips; 9
before the drive buffered its checkpoint writes, 7 before the fax's record (ledger result and
audit event) rode the drive's next round trip). The Lua script calls in those trips are pinned
too: each costs the server its own overhead (tens of thousands of instructions) on top of its
commands."""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import Connection

from carebound import Approve, Edit, Runner, VirtualClock


class CountingConnection(Connection):
    """A real connection that counts how often it sends to the server (round trips) and the
    script calls it sends."""

    sends = 0
    scripts = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        data = b"".join(command) if isinstance(command, list | tuple) else command
        type(self).scripts += data.upper().count(b"\r\nEVALSHA\r\n")
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def _decide_trips(runner: Runner, case: Any, world: Any, edit: bool) -> int:
    return _decide_sends(runner, case, world, edit)[0]


def _decide_sends(runner: Runner, case: Any, world: Any, edit: bool) -> tuple[int, int]:
    """A decide's round trips and script calls."""
    request = runner.start("demo", case, requester="sam", world=world).pending.request
    decision: Approve | Edit
    if edit:
        args = {**request.args, "note": "Call first."}
        decision = Edit(reviewer="Casey ", role="intake_coordinator", args_hash=request.args_hash,
                        args=args)  # fmt: skip
    else:
        decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash)
    before, scripts = CountingConnection.sends, CountingConnection.scripts
    assert runner.decide(request.approval_id, decision).outcome == "decided"
    return CountingConnection.sends - before, CountingConnection.scripts - scripts


def test_a_warm_decide_takes_six_round_trips(
    redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    try:
        runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
        _decide_trips(runner, demo_case, demo_world, edit=False)  # warms caches and scripts
        assert _decide_trips(runner, demo_case, demo_world, edit=False) == 6
        assert _decide_trips(runner, demo_case, demo_world, edit=True) == 6
    finally:
        for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
            client.delete(key)
        client.close()


def test_the_script_calls_of_a_warm_decide(
    redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    """The decide step, the lease, the checkpoint load, the decision's event, the resumed
    task's writes, the ledger, the simulated fax, the fax's event, the checkpoint, the record,
    the checkpoints' compaction, the lease's release and the status event, which compacts the
    audit stream after it: the hold's read is plain commands, and the stream's compaction rode
    in a script call of its own (15 before both)."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    try:
        runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
        _decide_trips(runner, demo_case, demo_world, edit=False)  # warms caches and scripts
        assert _decide_sends(runner, demo_case, demo_world, edit=False)[1] == 13
    finally:
        for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
            client.delete(key)
        client.close()
