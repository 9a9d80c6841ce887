"""Buffered checkpoint writes in carebound's own drives (carebound.checkpoint._session).

A drive keeps LangGraph's per-step checkpoints in memory and sends only the newest, before each
external effect (riding the ledger reserve's round trip), before a hold is parked, and when the
graph segment ends. These tests show that superseded checkpoints never reach Redis, that the
state a step runs from is durable before its effect, and that a process killed between two
flushes loses only planning steps, which a new process replays to the same result.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from carebound import AgentDefinition, Approve, Runner, VirtualClock
from carebound._agent import AgentContext, Plan, PlannerView
from carebound.agents.referral_intake import REFERRAL_INTAKE
from carebound.checkpoint import RedisSaver
from carebound.checkpoint._scripts import PUT, PUT_WITH_WRITES
from carebound.state.keys import text
from carebound.tools import EffectClass, ToolContext
from tests.intake_scenario import count_checkpoints_made, intake_case_and_world
from tests.test_audit_tamper import _decided_run
from tests.test_footprint_packed import _checkpoint_keys, read_packed


class _PutCounting(Connection):
    """A real connection that counts the checkpoint ``put`` scripts it sends (a put sent with
    its writes included)."""

    puts = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        data = b"".join(command) if isinstance(command, list) else command
        sent = bytes(data)
        type(self).puts += sent.count(PUT.sha.encode()) + sent.count(PUT_WITH_WRITES.sha.encode())
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def put_counting(redis_url: str) -> Iterator[tuple[redis.Redis, type[_PutCounting]]]:
    counting = type("Counting", (_PutCounting,), {"puts": 0})
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=counting)
    client = redis.Redis(connection_pool=pool)
    yield client, counting
    client.close()


def _checkpointed_state(redis_url: str, prefix: str, run_id: str) -> dict[str, Any]:
    """The run's newest checkpoint as stored in Redis, read by a saver of its own (outside any
    drive's buffer)."""
    client = redis.Redis.from_url(redis_url)
    saver = RedisSaver(client, prefix=prefix)
    try:
        stored = saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
        assert stored is not None, f"run {run_id} has no checkpoint in Redis"
        return dict(stored.checkpoint["channel_values"])
    finally:
        saver.close()
        client.close()


def test_superseded_checkpoints_are_never_sent(
    put_counting: tuple[redis.Redis, type[_PutCounting]], key_prefix: str
) -> None:
    client, counting = put_counting
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock(), lease_ttl_ms=600_000)
    made = count_checkpoints_made(runner)
    case, world = intake_case_and_world()
    view = runner.start("referral_intake", case, requester="sam", world=world)

    assert view.status == "waiting"
    effects = [e for e in runner.ledger.entries(view.run_id) if e.status == "done"]
    assert len(effects) >= 2  # the intake start makes several effects
    # LangGraph made a checkpoint per super-step; Redis got one before each effect and one
    # where the segment stopped, never one that a newer one superseded in between. (A step
    # makes an allowed call and the reads after it: 7 super-steps for 4 effects.)
    assert made() > len(effects) + 1, made()
    assert counting.puts == len(effects) + 1, (counting.puts, made())


def _watching_effects(
    agent: AgentDefinition, redis_url: str, prefix: str, seen: list[dict[str, Any]]
) -> AgentDefinition:
    """``agent`` whose effect tools first read, from Redis, the checkpoint their step runs from."""

    def watch(spec: Any) -> Any:
        def run(ctx: ToolContext, args: Any) -> Any:
            values = _checkpointed_state(redis_url, prefix, ctx.run_id)
            seen.append({"tool": spec.name, "key": ctx.idempotency_key, "state": values})
            return spec.run(ctx, args)

        return dataclasses.replace(spec, run=run)

    tools = {
        name: watch(spec) if spec.effect is not EffectClass.READ else spec
        for name, spec in agent.tools.items()
    }
    return dataclasses.replace(agent, tools=tools)


def test_the_state_an_effect_runs_from_is_durable_before_it(
    redis_url: str, key_prefix: str
) -> None:
    seen: list[dict[str, Any]] = []
    agent = _watching_effects(REFERRAL_INTAKE, redis_url, key_prefix, seen)
    client = redis.Redis.from_url(redis_url)
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents={agent.name: agent})
    case, world = intake_case_and_world()
    view = runner.start("referral_intake", case, requester="sam", world=world)

    assert view.status == "waiting"
    assert len(seen) >= 2
    final = [r.model_dump(mode="json") for r in view.results]
    done = [e.key for e in runner.ledger.entries(view.run_id)]
    for effect in seen:
        # Redis holds the checkpoint whose step makes this very call, with every result
        # before it: a crash from here on replays this step, and the ledger has its result.
        state = effect["state"]
        # the step starts with this call: gated and made in one step (the queue's first), or
        # made as the current call (a held one, decided)
        current, queue = state.get("current"), state.get("queue") or []
        upcoming = current["call"] if current is not None else (queue[0] if queue else None)
        assert upcoming is not None and upcoming["tool"] == effect["tool"], effect
        before = state["results"]
        assert before == final[: len(before)]
        assert final[len(before)]["tool"] == effect["tool"]
        assert effect["key"] in done
    client.close()


class _Crash(BaseException):
    """Stands for the process dying inside an effect (no tool error handler catches it)."""


def test_a_crash_inside_an_effect_resumes_in_a_new_runner_without_a_second_effect(
    redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    from carebound.agents.demo import DEMO

    send_name = next(n for n, s in DEMO.tools.items() if s.effect is not EffectClass.READ)
    send = DEMO.tools[send_name]
    calls: list[str] = []

    def send_then_die(ctx: ToolContext, args: Any) -> Any:
        calls.append(ctx.idempotency_key)
        receipt = send.run(ctx, args)
        if len(calls) == 1:
            raise _Crash  # the fax went out; the process dies before recording it
        return receipt

    crashing = dataclasses.replace(DEMO, tools={**DEMO.tools, send_name: dataclasses.replace(
        send, run=send_then_die)})  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    first = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents={DEMO.name: crashing})
    view = first.start(DEMO.name, demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request
    with pytest.raises(_Crash):
        first.decide(
            request.approval_id,
            Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash),
        )
    state = _checkpointed_state(redis_url, key_prefix, view.run_id)
    assert state["current"]["call"]["tool"] == send_name  # the pre-effect state is there
    assert [e.status for e in first.ledger.entries(view.run_id)] == ["reserved"]
    # the decision's resume write landed in the thread's packed key (tests/test_packed_writes.py)
    assert set(_checkpoint_keys(client, key_prefix, view.run_id)) <= {"pk", "runs"}
    [(_, _, _, _, _, fields, _)] = read_packed(client, f"{key_prefix}:{{{view.run_id}}}:cp:pk")[1:]
    assert any(text(field).endswith("\x00-4") for field in fields)  # RESUME's write index

    second = Runner(client, prefix=key_prefix, clock=VirtualClock(), agents={DEMO.name: crashing})
    second.recover()
    after = second.get(view.run_id)
    assert after.status != "running"
    assert [e.status for e in second.ledger.entries(view.run_id)] == ["done"]
    sent = [r for r in after.results if r.tool == send_name]
    assert [r.status for r in sent] == ["executed"]
    # the second attempt ran under the same key: the outreach connector de-duplicates on it
    assert calls == [calls[0], calls[0]]
    assert set(_checkpoint_keys(client, key_prefix, view.run_id)) <= {"pk", "runs"}
    assert second.verify(view.run_id).ok
    client.close()


# -- a crash between two flushes -------------------------------------------------------------

_KILL_AT_TURN = "kill_at_turn"


def _dying_planner(redis_url: str, prefix: str, turn: int) -> AgentDefinition:
    planner = REFERRAL_INTAKE.planner

    def plan(ctx: AgentContext, view: PlannerView) -> Plan:
        if view.turn == turn:
            client = redis.Redis.from_url(redis_url)
            client.set(f"{prefix}:{_KILL_AT_TURN}", turn)  # the parent checks it was reached
            os.kill(os.getpid(), signal.SIGKILL)  # no finally block, no buffer flushed
        return planner(ctx, view)

    return dataclasses.replace(REFERRAL_INTAKE, planner=plan)


def _start_and_die(redis_url: str, prefix: str, turn: int, run_id: str) -> None:
    client = redis.Redis.from_url(redis_url)
    agent = _dying_planner(redis_url, prefix, turn)
    runner = Runner(
        client, prefix=prefix, clock=VirtualClock(), agents={agent.name: agent}, lease_ttl_ms=500
    )
    case, world = intake_case_and_world()
    runner.start(agent.name, case, requester="sam", world=world, run_id=run_id)


def _outcome(runner: Runner, run_id: str) -> tuple[Any, ...]:
    view = runner.get(run_id)
    results = [(r.tool, r.status) for r in view.results]
    ledger = sorted((e.tool, e.status, e.attempts) for e in runner.ledger.entries(run_id))
    actions = sorted(e.action for e in runner.audit(run_id))
    return view.status, view.record.summary, results, ledger, actions


def test_a_crash_between_flushes_replays_to_the_same_result(
    redis_url: str, key_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    case, world = intake_case_and_world()
    reference_runner = Runner(client, prefix=key_prefix + "ref", clock=VirtualClock())
    reference = reference_runner.start("referral_intake", case, requester="sam", world=world)
    turns = _checkpointed_state(redis_url, key_prefix + "ref", reference.run_id)["turn"]
    assert turns >= 3 and len(reference.effects) >= 2
    turn = turns - 1  # a planning step after the start's effects, before it parks
    run_id = "crash-between-flushes"

    child = multiprocessing.get_context("fork").Process(
        target=_start_and_die, args=(redis_url, key_prefix, turn, run_id)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert client.get(f"{key_prefix}:{_KILL_AT_TURN}") == str(turn).encode()
    durable = _checkpointed_state(redis_url, key_prefix, run_id)
    assert durable["turn"] < turn  # the steps since the last flush were lost with the process

    runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
    runner.drive(run_id, lease_wait_s=30)  # once the dead process's lease has run out
    replayed, expected = _outcome(runner, run_id), _outcome(reference_runner, reference.run_id)
    assert replayed[:3] == expected[:3]
    # The same effects, each done. The last effect's record (ledger result and audit event)
    # rides the segment's next round trip, which the kill may come before: the replay then
    # calls the connector once more with the effect's key (de-duplicated there): attempts 2.
    assert [entry[:2] for entry in replayed[3]] == [entry[:2] for entry in expected[3]]
    assert 0 <= sum(e[2] for e in replayed[3]) - sum(e[2] for e in expected[3]) <= 1
    actions = _outcome(runner, run_id)[4]
    assert actions == _outcome(reference_runner, reference.run_id)[4]  # none lost or doubled
    assert runner.verify(run_id).ok
    client.close()


def test_an_event_leaves_the_queue_only_once_a_checkpoint_records_it(
    redis_url: str, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    client = redis.Redis.from_url(redis_url)
    runner = Runner(client, prefix=key_prefix, clock=VirtualClock())
    view = runner.get(_decided_run(runner, demo_case, demo_world))
    assert view.status == "waiting"
    consume = runner.runs.consume_event
    recorded: list[list[str]] = []

    def consumed_then_read(run_id: str, event_id: str) -> None:
        consume(run_id, event_id)
        # had the process died right here, the event would be gone from the queue: the
        # checkpoint that holds it must be in Redis already
        state = _checkpointed_state(redis_url, key_prefix, run_id)
        recorded.append([e["id"] for e in state.get("events", [])])

    setattr(runner.runs, "consume_event", consumed_then_read)  # noqa: B010 (instrumentation)
    match = f"request:{view.run_id}:11506-3"
    assert runner.deliver(match, {"document": "progress note"}, event_id="fax-77") == [view.run_id]
    assert recorded and all("fax-77" in ids for ids in recorded), recorded
    assert runner.get(view.run_id).status == "completed"
    client.close()
