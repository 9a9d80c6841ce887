"""Decide cost in CPU instructions: this checkout against another interpreter's carebound.

Wall and CPU times of a decide move with the machine's load (six processes on two cores
doubled them); the instructions a process executes do not. This benchmark runs the decide loop
of ``_commit_probe.py`` (demo runs parked at their held fax, each ``Runner.decide`` approval
timed until the run has sent its fax and parked at its wait) under valgrind's callgrind, with
instruction counting switched on only around the timed decides, once for this checkout and once
for ``--base-python`` (an interpreter whose environment imports the other carebound, as for
``compare_commits.py``). It prints the instructions per decide of each side and their ratio:
the client's CPU work, without the Redis server's (see ``compare_commits.py`` for wall times).
The counts repeat within a fraction of a percent from run to run (``PYTHONHASHSEED=0``).

With ``--server`` it also counts the Redis server's share: a redis-server started under
callgrind (counting off), each side's decide loop run against it natively, and the server's
counting switched on around that side's counted decides only. Those are the instructions the
server spends on a decide's commands and scripts (Lua included), which wall times on a loaded
machine cannot tell apart from the load.

Needs valgrind (``apt-get install valgrind``); about a minute per side, and half a minute per
side for ``--server``.

Usage::

    python benchmarks/decide_instructions.py [--base-python PATH] [--decides 30]
        [--redis-url URL] [--server]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import uuid
from contextlib import nullcontext
from pathlib import Path

import redis
from _callgrind import counting, instructions, require_valgrind
from _local_server import delete_prefix, free_port, local_server, server_binary, wait_until_up

HERE = Path(__file__).resolve()
CASE = HERE.parents[1] / "scenarios" / "cases" / "hello_referral.json"
WARMUP = 10


def child(url: str, prefix: str, decides: int) -> None:
    """Inside valgrind: park, decide ``WARMUP`` uncounted, then count ``decides``."""
    sys.path.insert(0, str(HERE.parent))
    from _commit_probe import Probe

    probe = Probe(url, prefix, CASE)
    probe.park(WARMUP + decides)
    for _ in range(WARMUP):
        probe.decide_one()
    with counting():
        for _ in range(decides):
            probe.decide_one()


def server_child(url: str, prefix: str, decides: int) -> None:
    """Outside valgrind, against the counted server: park and warm up, say ``ready``, decide
    ``decides`` once told to (a line on stdin), then say ``done``."""
    sys.path.insert(0, str(HERE.parent))
    from _commit_probe import Probe

    probe = Probe(url, prefix, CASE)
    probe.park(WARMUP + decides)
    for _ in range(WARMUP):
        probe.decide_one()
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(decides):
        probe.decide_one()
    print("done", flush=True)


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def measure_server(pythons: list[str], decides: int) -> list[float]:
    """Redis server instructions per decide for each interpreter's carebound, in turn, on one
    redis-server run under callgrind (each side under its own key prefix)."""
    binary = server_binary()
    with tempfile.TemporaryDirectory(prefix="cb-callgrind-server-") as tmp:
        port = free_port()
        server = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                f"--callgrind-out-file={tmp}/server.%p",
                *(binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_until_up(redis.Redis.from_url(url), server, timeout_s=60)
            return [_server_side(python, url, server.pid, decides, Path(tmp)) for python in pythons]
        finally:
            server.terminate()
            server.wait(timeout=60)


def _server_side(python: str, url: str, pid: int, decides: int, tmp: Path) -> float:
    prefix = f"bench-srv-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(
        [python, str(HERE), "--server-child", "--redis-url", url, "--prefix", prefix,
         "--decides", str(decides)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            sys.exit(f"{python}: the decide loop failed before its counted decides")
        _control(pid, "--zero")
        _control(pid, "--instr=on")
        child.stdin.write("go\n")
        child.stdin.flush()
        finished = child.stdout.readline().strip() == "done"
        _control(pid, "--instr=off")
        before = set(tmp.glob("server.*"))
        _control(pid, "--dump")
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    if not finished:
        sys.exit(f"{python}: the counted decides failed")
    dumps = sorted(set(tmp.glob("server.*")) - before or tmp.glob("server.*"),
                   key=lambda path: path.stat().st_mtime)  # fmt: skip
    found = re.search(r"^totals: (\d+)", dumps[-1].read_text(errors="replace"), re.MULTILINE)
    if found is None:
        sys.exit(f"no instruction totals in the server's callgrind dump {dumps[-1]}")
    delete_prefix(redis.Redis.from_url(url), prefix)
    return int(found.group(1)) / decides


def measure(python: str, url: str, decides: int) -> float:
    """Instructions per decide of the carebound ``python`` imports."""
    prefix = f"bench-ins-{uuid.uuid4().hex[:8]}"
    argv = [python, str(HERE), "--child", "--redis-url", url, "--prefix", prefix]
    counted = instructions([*argv, "--decides", str(decides)], what=f"{python}: the decide loop")
    delete_prefix(redis.Redis.from_url(url), prefix)
    return counted / decides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-python", help="an interpreter that imports the other carebound")
    parser.add_argument("--decides", type=int, default=30, help="counted decides per side")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    parser.add_argument(
        "--server", action="store_true", help="also count the Redis server's instructions"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--server-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.redis_url, opts.prefix, opts.decides)
        return
    if opts.server_child:
        server_child(opts.redis_url, opts.prefix, opts.decides)
        return
    require_valgrind()
    with local_server() if opts.redis_url is None else nullcontext(opts.redis_url) as url:
        head = measure(sys.executable, url, opts.decides)
        print(f"decide, instructions per decide (callgrind, {opts.decides} decides of demo runs)")
        print(f"  head {sys.executable}: {head / 1e6:7.2f} M")
        if opts.base_python:
            base = measure(opts.base_python, url, opts.decides)
            print(f"  base {opts.base_python}: {base / 1e6:7.2f} M")
            print(f"  head/base: {head / base:.2f}x")
    if opts.server:
        pythons = [sys.executable, *([opts.base_python] if opts.base_python else [])]
        counts = measure_server(pythons, opts.decides)
        print(f"decide, Redis server instructions per decide (callgrind, {opts.decides} decides)")
        for side, python, count in zip(("head", "base"), pythons, counts, strict=False):
            print(f"  {side} {python}: {count / 1e6:7.3f} M")
        if len(counts) == 2:
            print(f"  head/base: {counts[0] / counts[1]:.2f}x")


if __name__ == "__main__":
    main()
