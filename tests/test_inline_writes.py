"""carebound's graph runs write their checkpoints on the calling thread; other graphs don't."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from carebound import Approve, Runner
from carebound.state.inline_writes import InlineExecutor, inline_writes, install


@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the threads started while the test runs."""
    started: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    yield started


class _State(TypedDict):
    n: int


def _bump(state: _State) -> _State:
    return {"n": state["n"] + 1}


def _pause(state: _State) -> _State:
    answer = interrupt("more?")
    return {"n": state["n"] + int(answer)}


def _graph() -> Any:
    builder = StateGraph(_State)
    builder.add_node("bump", _bump)
    builder.add_node("pause", _pause)
    builder.add_edge(START, "bump")
    builder.add_edge("bump", "pause")
    builder.add_edge("pause", END)
    return builder.compile(checkpointer=InMemorySaver())


def test_langgraph_still_looks_the_executor_up_where_carebound_hooks_in() -> None:
    # False here means a LangGraph release moved the lookup: runs still work, on the pool.
    assert install()


def test_a_decide_and_its_drive_start_no_thread(
    make_runner: Any, demo_case: dict[str, Any], demo_world: Any, thread_starts: list[str]
) -> None:
    runner: Runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.pending is not None
    request = view.pending.request

    result = runner.decide(
        request.approval_id,
        Approve(reviewer="casey", role="intake_coordinator", args_hash=request.args_hash),
    )

    assert result.run.status == "waiting"
    assert [e.status for e in result.run.effects] == ["done"]
    assert thread_starts == []


def test_other_graphs_keep_langgraphs_pool(thread_starts: list[str]) -> None:
    graph = _graph()
    config: Any = {"configurable": {"thread_id": "t1"}}

    graph.invoke({"n": 0}, config, durability="sync")

    assert thread_starts  # the checkpoint writes went to LangGraph's own pool
    assert graph.get_state(config).values == {"n": 1}


def test_inline_runs_resume_and_persist_like_pooled_runs(thread_starts: list[str]) -> None:
    graph = _graph()
    config: Any = {"configurable": {"thread_id": "t2"}}

    with inline_writes():
        graph.invoke({"n": 0}, config, durability="sync")
        paused = graph.get_state(config)
        out = graph.invoke(Command(resume=5), config, durability="sync")

    assert paused.next == ("pause",)
    assert out == {"n": 6}
    assert graph.get_state(config).values == {"n": 6}
    assert thread_starts == []


def test_an_inline_error_lands_in_the_future() -> None:
    def fail() -> None:
        raise ValueError("lost the lease")

    future = InlineExecutor().submit(fail)

    with pytest.raises(ValueError, match="lost the lease"):
        future.result()
    assert InlineExecutor().submit(lambda x: x * 2, 21).result() == 42
