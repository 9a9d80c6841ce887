"""A long-lived decider process for the multi-process test in test_concurrent_decisions.py.

Usage::

    python tests/decider_proc.py --redis-url URL --prefix PREFIX --worker N [--parties 8]

The process builds its own :class:`~carebound.Runner` and Redis client, reports ``ready``, then
loops: it pops a job (an approval to decide) from its own inbox list, meets the other deciders
at a Redis barrier for that approval (the last to arrive releases everyone at once), calls
``runner.decide(...)`` as reviewer ``casey`` (even workers) or ``jordan`` (odd workers), and
pushes what happened to the shared outcome list. A ``stop`` job, the stop flag (the test
giving up), or its parent going away, ends it.

Nothing here waits on a clock: on a busy machine a decider may arrive at the barrier minutes
after the others, and they wait for it (the parent test judges progress, not speed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Literal

import redis
from pydantic import BaseModel

from carebound import AlreadyDecidedError, Approve, DecisionRefusedError, Runner, VirtualClock
from carebound.approvals import DecideStepReply
from carebound.guardrails import load_policy_pack
from carebound.state.keys import global_key

ROLE = "intake_coordinator"


def reviewer_of(worker: int) -> str:
    """The reviewer a worker decides as: casey and jordan alternately (both hold ROLE)."""
    return "casey" if worker % 2 == 0 else "jordan"


def inbox_key(prefix: str, worker: int) -> str:
    """The list a worker pops its jobs from."""
    return global_key(prefix, "deciders", "inbox", str(worker))


def outcomes_key(prefix: str) -> str:
    """The list every worker pushes its outcomes to."""
    return global_key(prefix, "deciders", "outcomes")


def stop_key(prefix: str) -> str:
    """Set by the test when it stops the deciders: a decider waiting at a barrier leaves."""
    return global_key(prefix, "deciders", "stop")


def _arrived_key(prefix: str, approval_id: str) -> str:
    return global_key(prefix, "deciders", "arrived", approval_id)


def _go_key(prefix: str, approval_id: str) -> str:
    return global_key(prefix, "deciders", "go", approval_id)


class Job(BaseModel):
    """One approval to decide, or the order to stop."""

    approval_id: str = ""
    args_hash: str = ""
    stop: bool = False


class Outcome(BaseModel):
    """What one worker's decide call did."""

    worker: int
    kind: Literal["ready", "decided", "already_decided", "refused", "error"]
    approval_id: str = ""
    reviewer: str = ""
    run_status: str = ""
    decided_by: str = ""
    decided_at: str = ""
    code: str = ""
    message: str = ""
    atomic: str = ""
    """What the atomic decide script told this decider (``ok``, ``decided``, ...), or ``""``
    when the Runner refused it on its first read, before the script."""


def observe_atomic_step(runner: Runner) -> list[tuple[str, str]]:
    """Record ``(approval_id, outcome)`` each time the runner's atomic decide script answers.

    It wraps the real ``ApprovalStore.queue_decide`` (no mock): the tests use it to show the
    deciders really raced inside the script, not only at the Runner's first read of the
    approval.
    """
    seen: list[tuple[str, str]] = []
    queue = runner.approvals.queue_decide

    def observed(
        pipe: Any, approval_id: str, *args: Any, **kwargs: Any
    ) -> Callable[[Any], DecideStepReply]:
        parse = queue(pipe, approval_id, *args, **kwargs)

        def parse_and_note(reply: Any) -> DecideStepReply:
            result = parse(reply)
            seen.append((approval_id, result.outcome))  # list.append is atomic across threads
            return result

        return parse_and_note

    runner.approvals.queue_decide = observed  # type: ignore[method-assign]
    return seen


def decide_once(runner: Runner, worker: int, job: Job, atomic: list[tuple[str, str]]) -> Outcome:
    """Call ``runner.decide`` for ``job`` and describe the result; never raises.

    ``atomic`` is the list :func:`observe_atomic_step` fills in for ``runner``.
    """
    seen = len(atomic)
    reviewer = reviewer_of(worker)
    decision = Approve(reviewer=reviewer, role=ROLE, args_hash=job.args_hash)
    outcome = Outcome(worker=worker, kind="error", approval_id=job.approval_id, reviewer=reviewer)
    update: dict[str, str]
    try:
        result = runner.decide(job.approval_id, decision)
    except AlreadyDecidedError as exc:
        update = {
            "kind": "already_decided",
            "decided_by": exc.decided_by,
            "decided_at": exc.decided_at,
            "code": exc.code,
            "message": exc.message,
        }
    except DecisionRefusedError as exc:
        update = {"kind": "refused", "code": exc.code, "message": exc.message}
    except Exception:
        update = {"kind": "error", "message": traceback.format_exc()}
    else:
        if result.outcome == "decided":
            update = {"kind": "decided", "run_status": result.run.status}
        else:
            update = {"kind": "error", "message": f"unexpected outcome {result.outcome!r}"}
    update["atomic"] = ",".join(o for a, o in atomic[seen:] if a == job.approval_id)
    return Outcome.model_validate({**outcome.model_dump(), **update})


def blpop(client: redis.Redis, key: str, wait_s: float) -> bytes | None:
    """Pop from ``key``, waiting up to ``wait_s`` in 1 s steps (below the client's socket
    timeout, which redis-py sets to 5 s by default)."""
    deadline = time.monotonic() + wait_s
    while True:
        item = client.blpop([key], timeout=1)
        if item is not None:
            value = item[1]
            return value if isinstance(value, bytes) else str(value).encode()
        if time.monotonic() >= deadline:
            return None


def _meet(client: redis.Redis, prefix: str, approval_id: str, parties: int, parent: int) -> bool:
    """Wait until all ``parties`` workers hold this job, then return together (True); False
    when the test stopped the deciders or went away first."""
    arrived = int(client.incr(_arrived_key(prefix, approval_id)))
    if arrived == parties:
        client.rpush(_go_key(prefix, approval_id), *(["go"] * parties))
    while blpop(client, _go_key(prefix, approval_id), 1) is None:
        if os.getppid() != parent or client.exists(stop_key(prefix)):
            return False
    return True


def serve(client: redis.Redis, prefix: str, worker: int, parties: int) -> int:
    """The worker loop; returns the process exit status."""
    runner = Runner(client, prefix=prefix, clock=VirtualClock(), policy=load_policy_pack("default"))
    atomic = observe_atomic_step(runner)
    out = outcomes_key(prefix)
    client.rpush(out, Outcome(worker=worker, kind="ready").model_dump_json())
    parent = os.getppid()
    while True:
        raw = blpop(client, inbox_key(prefix, worker), 0)
        if raw is None:
            if os.getppid() != parent:
                return 1  # orphaned: the test process died
            continue
        job = Job.model_validate_json(raw)
        if job.stop:
            return 0
        if not _meet(client, prefix, job.approval_id, parties, parent):
            return 1  # stopped or orphaned while the other deciders had not all arrived
        client.rpush(out, decide_once(runner, worker, job, atomic).model_dump_json())


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--parties", type=int, default=8)
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(args.redis_url)
    try:
        return serve(client, args.prefix, args.worker, args.parties)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
