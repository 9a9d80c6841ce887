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

With ``--server`` it also counts the Redis server's share (``--by-script``: per Lua script call,
each charged with what the server ran since the previous call ended; the dumps that splits on
add to the total, so compare scripts with each other there): a redis-server started under
callgrind (counting off), each side's decide loop run against it natively, and the server's
counting switched on around that side's counted decides only. Those are the instructions the
server spends on a decide's commands and scripts (Lua included), which wall times on a loaded
machine cannot tell apart from the load.

Needs valgrind (``apt-get install valgrind``); about a minute per side, and half a minute per
side for ``--server``.

Usage::

    python benchmarks/decide_instructions.py [--base-python PATH] [--decides 30]
        [--redis-url URL] [--server [--by-script]]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import redis
from _callgrind import counting, instructions, require_valgrind
from _local_server import delete_prefix, free_port, local_server, server_binary, wait_until_up
from redis.connection import Connection

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


def server_child(url: str, prefix: str, decides: int, order: str | None) -> None:
    """Outside valgrind, against the counted server: park and warm up, then decide
    ``decides`` once told to (see :func:`serve_counted`)."""
    sys.path.insert(0, str(HERE.parent))
    from _commit_probe import Probe

    probe = Probe(url, prefix, CASE)

    def warm_up() -> None:
        probe.park(WARMUP + decides)
        for _ in range(WARMUP):
            probe.decide_one()

    def counted() -> None:
        for _ in range(decides):
            probe.decide_one()

    serve_counted(order, warm_up, counted)


def serve_counted(
    order: str | None, warm_up: Callable[[], object], counted: Callable[[], object]
) -> None:
    """A ``--server-child``: ``warm_up()``, say ``ready``, run ``counted()`` once told to (a
    line on stdin), then say ``done``. With ``order``, the sha1s of the scripts ``counted``
    sent, in order, are written to that file."""
    sent: list[str] = []
    recording = False
    send = Connection.send_packed_command

    def recorded(self: Connection, command: Any, check_health: bool = True) -> None:
        if recording:
            data = b"".join(command) if isinstance(command, list | tuple) else command
            sent.extend(m.group(1).decode() for m in _EVALSHA.finditer(data))
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    Connection.send_packed_command = recorded  # type: ignore[method-assign,assignment]
    warm_up()
    print("ready", flush=True)
    sys.stdin.readline()
    recording = order is not None
    counted()
    recording = False
    if order is not None:
        Path(order).write_text("\n".join(sent))
    print("done", flush=True)


_EVALSHA = re.compile(rb"EVALSHA\r\n\$40\r\n([0-9a-f]{40})", re.IGNORECASE)
"""A script call in a packed command (its sha1)."""


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


class ServerCount(NamedTuple):
    """The server's instructions per decide, and per script with ``--by-script``."""

    total: float
    by_script: dict[str, tuple[float, float]]
    """Script (name, or sha1 prefix for a script this checkout does not have) -> (calls, K
    instructions) per decide."""


def measure_server(
    pythons: list[str], decides: int, *, by_script: bool, bench: Path = HERE
) -> list[ServerCount]:
    """Redis server instructions per decide for each interpreter's carebound, in turn, on one
    redis-server run under callgrind (each side under its own key prefix). ``by_script``: the
    server dumps its counts after every EVALSHA, and each script call is charged what the
    server ran since the previous one ended (the script and the plain commands sent just
    before it). ``bench``: the benchmark whose ``--server-child`` runs the counted operations
    (``start_instructions.py`` counts starts this way; ``decides`` is then the starts)."""
    binary = server_binary()
    with tempfile.TemporaryDirectory(prefix="cb-callgrind-server-") as tmp:
        port = free_port()
        server = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                "--toggle-collect=processInputBuffer",  # commands only: no cron, no idle loop
                *(["--dump-after=evalShaCommand"] if by_script else []),
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
            return [
                _server_side(
                    python, url, server.pid, decides, Path(tmp), by_script=by_script, bench=bench
                )
                for python in pythons
            ]
        finally:
            server.terminate()
            server.wait(timeout=60)


def _server_side(
    python: str, url: str, pid: int, decides: int, tmp: Path, *, by_script: bool, bench: Path
) -> ServerCount:
    prefix = f"bench-srv-{uuid.uuid4().hex[:8]}"
    order = tmp / f"{prefix}.order"
    child = subprocess.Popen(
        [python, str(bench), "--server-child", "--redis-url", url, "--prefix", prefix,
         "--decides", str(decides), *(["--order", str(order)] if by_script else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            sys.exit(f"{python}: the decide loop failed before its counted decides")
        _control(pid, "--zero")
        for old in tmp.glob("server.*"):
            old.unlink()
        _control(pid, "--instr=on")
        child.stdin.write("go\n")
        child.stdin.flush()
        finished = child.stdout.readline().strip() == "done"
        _control(pid, "--instr=off")
        _control(pid, "--dump")
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    if not finished:
        sys.exit(f"{python}: the counted decides failed")
    counts = [_dump_total(path) for path in _dumps(tmp)]
    delete_prefix(redis.Redis.from_url(url), prefix)
    per_script: dict[str, tuple[float, float]] = {}
    if by_script:
        from carebound.state.lua._loader import script, script_names  # this checkout's

        names = {script(name).sha: name for name in script_names()}
        sent = [names.get(sha, sha[:8]) for sha in order.read_text().split()]
        for name, count in zip(sent, counts, strict=False):  # the last dump: after the last
            calls, instructions = per_script.get(name, (0.0, 0.0))
            per_script[name] = (calls + 1 / decides, instructions + count / decides / 1e3)
    return ServerCount(sum(counts) / decides, per_script)


def _dumps(tmp: Path) -> list[Path]:
    """The server's callgrind dumps in the order written (``server.<pid>.<part>``)."""
    found = [path for path in tmp.glob("server.*.*") if path.name.rsplit(".", 1)[1].isdigit()]
    return sorted(found, key=lambda path: int(path.name.rsplit(".", 1)[1]))


def _dump_total(path: Path) -> int:
    found = re.search(r"^totals: (\d+)", path.read_text(errors="replace"), re.MULTILINE)
    if found is None:
        sys.exit(f"no instruction totals in the server's callgrind dump {path}")
    return int(found.group(1))


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
    parser.add_argument(
        "--by-script", action="store_true", help="with --server: the server's count per script"
    )
    parser.add_argument("--server-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.redis_url, opts.prefix, opts.decides)
        return
    if opts.server_child:
        server_child(opts.redis_url, opts.prefix, opts.decides, opts.order)
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
    if opts.server or opts.by_script:
        server(opts.base_python, opts.decides, by_script=opts.by_script, what="decide")


def server(base_python: str | None, count: int, *, by_script: bool, what: str) -> None:
    """Count and print the Redis server's instructions per ``what`` (a decide, or a start
    for ``start_instructions.py``, whose ``--server-child`` then runs the counted starts)."""
    pythons = [sys.executable, *([base_python] if base_python else [])]
    bench = HERE if what == "decide" else HERE.with_name("start_instructions.py")
    counts = measure_server(pythons, count, by_script=by_script, bench=bench)
    print(f"{what}, Redis server instructions per {what} (callgrind, {count} {what}s)")
    if by_script:
        print("  (--by-script: the server dumps its count after every script call, which adds")
        print("  to the totals; compare the scripts with each other, and totals with --server)")
    for side, python, found in zip(("head", "base"), pythons, counts, strict=False):
        print(f"  {side} {python}: {found.total / 1e6:7.3f} M")
        ranked = sorted(found.by_script.items(), key=lambda item: -item[1][1])
        for name, (calls, thousands) in ranked:
            print(f"    {name:28} {calls:4.1f} calls {thousands:8.1f} K")
    if len(counts) == 2:
        print(f"  head/base: {counts[0].total / counts[1].total:.2f}x")


if __name__ == "__main__":
    main()
