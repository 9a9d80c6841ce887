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

Needs valgrind (``apt-get install valgrind``); about a minute per side.

Usage::

    python benchmarks/decide_instructions.py [--base-python PATH] [--decides 30]
        [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import nullcontext
from pathlib import Path

import redis
from _local_server import delete_prefix, local_server

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
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    for _ in range(decides):
        probe.decide_one()
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def measure(python: str, url: str, decides: int) -> float:
    """Instructions per decide of the carebound ``python`` imports."""
    prefix = f"bench-ins-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="cb-callgrind-") as tmp:
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                f"--callgrind-out-file={tmp}/out",
                *(python, str(HERE), "--child", "--redis-url", url, "--prefix", prefix),
                *("--decides", str(decides)),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
    delete_prefix(redis.Redis.from_url(url), prefix)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"{python}: the decide loop failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1)) / decides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-python", help="an interpreter that imports the other carebound")
    parser.add_argument("--decides", type=int, default=30, help="counted decides per side")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(opts.redis_url, opts.prefix, opts.decides)
        return
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install valgrind (apt-get install valgrind)")
    with local_server() if opts.redis_url is None else nullcontext(opts.redis_url) as url:
        head = measure(sys.executable, url, opts.decides)
        print(f"decide, instructions per decide (callgrind, {opts.decides} decides of demo runs)")
        print(f"  head {sys.executable}: {head / 1e6:7.2f} M")
        if opts.base_python:
            base = measure(opts.base_python, url, opts.decides)
            print(f"  base {opts.base_python}: {base / 1e6:7.2f} M")
            print(f"  head/base: {head / base:.2f}x")


if __name__ == "__main__":
    main()
