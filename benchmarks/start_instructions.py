"""Start cost in CPU instructions: a warm ``referral_intake`` start against the bare graph run.

The start line of ``footprint.py`` (wall and CPU time of a warm start -> park of
``referral_intake`` against a bare 10-node LangGraph run in memory, interleaved) moves with the
machine's load; the instructions a process executes do not. This benchmark runs the same two
loops under valgrind's callgrind, counting only the timed part: ``--starts`` warm starts (after
five uncounted ones) in one process, ``--starts`` bare runs in another, and prints the
instructions of each and their ratio (the client's CPU work, without the Redis server's; the
issue 17 target for the wall-time ratio is 4x). With ``--base-python`` (an interpreter whose
environment imports another carebound checkout, as for ``compare_commits.py``) the starts of
that checkout are counted too. The counts repeat within a fraction of a percent
(``PYTHONHASHSEED=0``).

With ``--server`` it also counts the Redis server's instructions per start (``--by-script``: per
Lua script call, as ``decide_instructions.py --server --by-script`` does for a decide): a
redis-server run under callgrind, each side's starts sent to it natively, counting switched on
around the counted starts only. Those are the instructions the server spends on a start's
scripts and commands, which wall times on a loaded machine cannot tell apart from the load.

Needs valgrind (``apt-get install valgrind``); about a minute per side on an idle machine.

Usage::

    python benchmarks/start_instructions.py [--base-python PATH] [--starts 10] [--redis-url URL]
        [--server [--by-script]]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path

import redis
from _callgrind import counting, instructions, require_valgrind
from _local_server import delete_prefix, local_server

HERE = Path(__file__).resolve()
WARMUP = 5


def child(url: str, prefix: str, what: str, count: int) -> None:
    """Inside valgrind: warm up, then count ``count`` starts (or bare runs) only."""
    sys.path.insert(0, str(HERE.parent))
    from footprint import bare_graph, case_and_world

    from carebound import Runner

    case, world, parks = case_and_world("referral_intake")
    runner = Runner(redis.Redis.from_url(url), prefix=prefix)
    graph = bare_graph()

    def once(i: int) -> None:
        if what == "start":
            view = runner.start("referral_intake", case, requester="sam", world=world)
            if view.status != parks:
                raise SystemExit(f"run {view.run_id} stopped {view.status}, not {parks}")
        else:
            config = {"configurable": {"thread_id": f"bare-{i}"}}
            graph.invoke({"n": 0}, config, durability="sync")

    for i in range(WARMUP):
        once(i)
    with counting():
        for i in range(count):
            once(WARMUP + i)


def server_child(url: str, prefix: str, count: int, order: str | None) -> None:
    """Outside valgrind, against the counted server: warm up, then start ``count`` runs once
    told to (see ``decide_instructions.serve_counted``)."""
    sys.path.insert(0, str(HERE.parent))
    from decide_instructions import serve_counted
    from footprint import case_and_world

    from carebound import Runner

    case, world, parks = case_and_world("referral_intake")
    runner = Runner(redis.Redis.from_url(url), prefix=prefix)

    def starts(how_many: int) -> None:
        for _ in range(how_many):
            view = runner.start("referral_intake", case, requester="sam", world=world)
            if view.status != parks:
                raise SystemExit(f"run {view.run_id} stopped {view.status}, not {parks}")

    serve_counted(order, lambda: starts(WARMUP), lambda: starts(count))


def measure(python: str, url: str, what: str, count: int) -> float:
    """Instructions per start (or bare run) of the carebound ``python`` imports."""
    prefix = f"bench-start-ins-{uuid.uuid4().hex[:8]}"
    argv = [python, str(HERE), "--child", what, "--redis-url", url, "--prefix", prefix]
    counted = instructions([*argv, "--starts", str(count)], what=f"{python}: the {what} loop")
    delete_prefix(redis.Redis.from_url(url), prefix)
    return counted / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-python", help="an interpreter that imports the other carebound")
    parser.add_argument("--starts", type=int, default=10, help="counted starts per side")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    parser.add_argument(
        "--server", action="store_true", help="also count the Redis server's instructions"
    )
    parser.add_argument(
        "--by-script", action="store_true", help="with --server: the server's count per script"
    )
    parser.add_argument("--child", choices=["start", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--server-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--decides", type=int, dest="starts", help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.redis_url, opts.prefix, opts.child, opts.starts)
        return
    if opts.server_child:
        server_child(opts.redis_url, opts.prefix, opts.starts, opts.order)
        return
    require_valgrind()
    if opts.server or opts.by_script:
        from decide_instructions import server

        server(opts.base_python, opts.starts, by_script=opts.by_script, what="start")
        return
    with local_server() if opts.redis_url is None else nullcontext(opts.redis_url) as url:
        print(f"referral_intake start -> park, instructions per start (callgrind, "
              f"{opts.starts} warm starts; the bare 10-node LangGraph run in memory as the "
              "reference)")  # fmt: skip
        bare = measure(sys.executable, url, "bare", opts.starts)
        head = measure(sys.executable, url, "start", opts.starts)
        print(f"  bare run:                  {bare / 1e6:7.2f} M")
        print(f"  head {sys.executable}: {head / 1e6:7.2f} M  ({head / bare:.1f}x the bare run)")
        if opts.base_python:
            base = measure(opts.base_python, url, "start", opts.starts)
            print(f"  base {opts.base_python}: {base / 1e6:7.2f} M  ({base / bare:.1f}x)")
            print(f"  head/base: {head / base:.2f}x")


if __name__ == "__main__":
    main()
