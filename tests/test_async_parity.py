"""AsyncRunner is Runner's twin: the same public methods, with the same parameters."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from carebound import AsyncRunner, Runner, VirtualClock

#: Runner members that do no I/O: AsyncRunner answers them directly, not as coroutines.
NO_IO = {"agent", "agent_names", "worker_pool"}
#: AsyncRunner's own additions.
ASYNC_ONLY = {"aclose"}


def public(cls: type) -> dict[str, Any]:
    """Public members defined on ``cls`` or its bases (``object`` aside), by name."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        members.update((n, v) for n, v in vars(klass).items() if not n.startswith("_"))
    return members


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter after ``self``."""
    params = list(inspect.signature(function).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def parity_problems(sync: type, twin: type) -> list[str]:
    """What keeps ``twin`` from being the async twin of ``sync`` (empty when it is)."""
    ours, theirs = public(sync), public(twin)
    problems = [f"AsyncRunner lacks {name}" for name in sorted(ours.keys() - theirs.keys())]
    problems += [
        f"AsyncRunner.{name} has no Runner counterpart"
        for name in sorted(theirs.keys() - ours.keys() - ASYNC_ONLY)
    ]
    for name in sorted(ours.keys() & theirs.keys()):
        mine, twins = ours[name], theirs[name]
        if isinstance(mine, property) or isinstance(twins, property):
            if not (isinstance(mine, property) and isinstance(twins, property)):
                problems.append(f"{name} is a property on one side only")
            continue
        if inspect.iscoroutinefunction(twins) == (name in NO_IO):
            kind = "a plain method" if name in NO_IO else "a coroutine"
            problems.append(f"AsyncRunner.{name} should be {kind}")
        if parameters(mine) != parameters(twins):
            problems.append(
                f"{name}: Runner takes {parameters(mine)}, AsyncRunner {parameters(twins)}"
            )
    return problems


def test_async_runner_has_every_public_method_of_runner() -> None:
    assert parity_problems(Runner, AsyncRunner) == []


def test_the_comparison_can_fail() -> None:
    class Grown(Runner):
        def archive(self, run_id: str) -> None:
            """A method Runner might gain."""

        def get(self, run_id: str, *, fresh: bool = False) -> Any:  # type: ignore[override]
            """A parameter Runner might gain."""

    problems = parity_problems(Grown, AsyncRunner)
    assert "AsyncRunner lacks archive" in problems
    assert any(p.startswith("get: Runner takes") for p in problems)

    class Stale(AsyncRunner):
        def drive(self, run_id: str, *, lease_wait_s: float = 5.0) -> Any:  # type: ignore[override]
            """Not a coroutine."""

    assert parity_problems(Runner, Stale) == ["AsyncRunner.drive should be a coroutine"]


@pytest.fixture
def arunner(redis_client: Any, key_prefix: str, redis_url: str) -> AsyncRunner:
    return AsyncRunner(Runner(redis_client, prefix=key_prefix, clock=VirtualClock()))


def test_the_async_twin_runs_a_hold_end_to_end(
    arunner: AsyncRunner, demo_case: Any, demo_world: Any
) -> None:
    from carebound import Approve

    async def scenario() -> None:
        async with arunner as runner:
            await runner.ping()
            assert "demo" in runner.agent_names and runner.agent("demo").name == "demo"
            view = await runner.start("demo", demo_case, requester="sam", world=demo_world)
            assert view.pending is not None
            request = view.pending.request
            assert [r.run_id for r in await runner.list_runs(agent="demo")] == [view.run_id]
            assert [a.request.approval_id for a in await runner.pending()] == [request.approval_id]
            decision = Approve(
                reviewer="casey", role="intake_coordinator", args_hash=request.args_hash
            )
            assert (await runner.decide(request.approval_id, decision)).outcome == "decided"
            assert (await runner.drive(view.run_id)).status == "waiting"
            assert await runner.deliver("no-such-match", {}, event_id="e-1") == []
            assert await runner.recover() == []
            assert (await runner.verify(view.run_id)).ok
            assert (await runner.pack_for(view.run_id)).name

    asyncio.run(scenario())


@pytest.mark.parametrize("wrapped", [None, "redis://127.0.0.1:6379/0", object()])
def test_async_runner_refuses_what_is_not_a_runner_when_it_is_made(wrapped: object) -> None:
    # Runner refuses a bad client when it is made; AsyncRunner took anything and failed with an
    # AttributeError at its first call.
    with pytest.raises(TypeError, match=r"AsyncRunner wraps a carebound Runner"):
        AsyncRunner(wrapped)  # type: ignore[arg-type]
