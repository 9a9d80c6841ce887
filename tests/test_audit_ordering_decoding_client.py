"""With a Redis client that decodes replies (``decode_responses=True``), the audit log and the
checkpointer each send on a binary sibling connection of their own. A step's audit events
must still reach Redis before any checkpoint past that step: a process killed in between
would otherwise leave a run whose state says a call was judged and made, and whose trail
never says so (a recovery resumes after the step and does not record it again).

The crash is real: a child process starts a demo run, stops right where its hold is parked
(after the checkpoints of the steps before it were written), and is killed with SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import redis

from carebound import Runner
from tests.conftest import PROJECT

CHILD = textwrap.dedent(
    """
    import json, sys, threading
    import redis
    from carebound import Runner
    from carebound.tools.connectors import WorldSpec

    url, prefix, case_path, decode = sys.argv[1:5]
    client = redis.Redis.from_url(url, decode_responses=decode == "1")
    runner = Runner(client, prefix=prefix)

    def stop_here(request):  # the hold is never parked: the process dies here
        print(request.run_id, flush=True)
        threading.Event().wait()

    runner.approvals.park = stop_here
    case = json.loads(open(case_path).read())
    runner.start("demo", case, requester="sam", world=WorldSpec.from_bundles(case, None))
    """
)


@pytest.mark.parametrize("decode", [True, False], ids=["decoding", "binary"])
def test_a_steps_audit_events_land_before_the_checkpoint_past_them(
    redis_url: str, key_prefix: str, decode: bool
) -> None:
    case = PROJECT / "scenarios" / "cases" / "hello_referral.json"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, redis_url, key_prefix, str(case), "1" if decode else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        run_id = child.stdout.readline().strip()  # blocks until the child reached the park
        child.kill()
        child.wait()
        assert run_id, child.stderr.read()[-2000:]

    client = redis.Redis.from_url(redis_url)
    try:
        runner = Runner(client, prefix=key_prefix)
        made = [r.tool for r in runner.get(run_id).results if r.status == "executed"]
        if decode:  # its checkpointer wrote on its own: the checkpoint is past the read's step
            assert made == ["read_referral"]
        checked = [
            e.detail.get("tool") for e in runner.audit(run_id) if e.action == "permission_check"
        ]
        for tool in made:
            assert tool in checked, f"the trail lacks the gate of {tool}: {checked}"
        assert runner.verify(run_id).ok
    finally:
        client.close()
