"""A wait's timer belongs to that wait: once the run left it (an event came first), the timer
must not wake the run later, nor touch a run that ended.

Before, the timer stayed in the due set and fired anyway: a run waiting a second time took the
first wait's timer for its own (an agent that chases twice concluded "no reply" days early),
and a run that had completed got an event queue key with no TTL, which outlived its retention.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis

from carebound import Runner, VirtualClock
from carebound._agent import AgentContext, AgentDefinition, FinishSpec, Plan, PlannerView, WaitSpec


def _plan(ctx: AgentContext, view: PlannerView) -> Plan:
    """Wait up to 2 days for a first reply, then up to 5 days for a second one."""
    if not view.events:
        return Plan(wait=WaitSpec(reason="first", until=ctx.now + timedelta(days=2),
                                  match=[f"first:{ctx.run_id}"]))  # fmt: skip
    if len(view.events) == 1 and view.events[0].kind != "timer":
        return Plan(wait=WaitSpec(reason="second", until=ctx.now + timedelta(days=5),
                                  match=[f"second:{ctx.run_id}"]))  # fmt: skip
    last = view.events[-1]
    return Plan(finish=FinishSpec(summary=f"ended on {last.kind} after {len(view.events)}"))


TWO_WAITS = AgentDefinition(
    name="two_waits", version="1", description="Waits twice.", tools={}, planner=_plan
)


def _runner(client: redis.Redis, prefix: str, clock: VirtualClock) -> Runner:
    return Runner(client, prefix=prefix, clock=clock, agents={"two_waits": TWO_WAITS},
                  retention_days=30)  # fmt: skip


def test_a_wait_left_by_an_event_does_not_wake_the_next_wait_with_its_timer(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any
) -> None:
    clock = VirtualClock()
    runner = _runner(redis_client, key_prefix, clock)
    run_id = runner.start("two_waits", demo_case, requester="sam").run_id
    assert runner.deliver(f"first:{run_id}", {"reply": 1}) == [run_id]
    assert runner.get(run_id).record.wait_reason == "second"

    clock.advance(timedelta(days=3))  # the first wait's timer is due; the second's is not
    report = runner.sweep()
    view = runner.get(run_id)
    assert (view.status, view.record.summary) == ("waiting", "")
    assert view.record.wait_reason == "second"
    assert report.timers_fired == 0

    clock.advance(timedelta(days=3))  # now the second wait's timer is due
    assert runner.sweep().timers_fired == 1
    view = runner.get(run_id)
    assert view.status == "completed" and view.record.summary == "ended on timer after 2"


def test_the_timer_of_a_cancelled_run_is_dropped(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any
) -> None:
    clock = VirtualClock()
    runner = _runner(redis_client, key_prefix, clock)
    run_id = runner.start("two_waits", demo_case, requester="sam").run_id
    runner.cancel(run_id, by="ops", reason="duplicate")
    clock.advance(timedelta(days=3))
    assert runner.sweep().timers_fired == 0
    assert runner.get(run_id).status == "cancelled"


def test_the_timer_of_a_run_that_ended_is_dropped_without_a_trace(
    redis_client: redis.Redis, key_prefix: str, demo_case: Any
) -> None:
    clock = VirtualClock()
    runner = _runner(redis_client, key_prefix, clock)
    run_id = runner.start("two_waits", demo_case, requester="sam").run_id
    runner.deliver(f"first:{run_id}", {"reply": 1})
    runner.deliver(f"second:{run_id}", {"reply": 2})
    assert runner.get(run_id).status == "completed"
    keys = set(redis_client.scan_iter(match=f"{key_prefix}:{{{run_id}}}:*"))

    clock.advance(timedelta(days=6))  # both timers are due
    assert runner.sweep().timers_fired == 0
    assert set(redis_client.scan_iter(match=f"{key_prefix}:{{{run_id}}}:*")) == keys
    # every key the ended run still has expires with its retention
    assert all(redis_client.ttl(key) > 0 for key in keys if b":audit" not in key)
    assert runner.get(run_id).record.summary == "ended on event after 2"
