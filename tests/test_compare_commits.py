"""``benchmarks/compare_commits.py`` runs end to end: both sides' probes start, park, take
turns and report every figure, and the benchmark's keys are gone afterwards. (Here both sides
are this checkout; the lead runs it against the commit before the redesign.)"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]


def test_compare_commits_reports_both_sides_and_leaves_no_keys(
    redis_url: str, redis_client: redis.Redis
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks" / "compare_commits.py")),
            *("--base-python", sys.executable, "--redis-url", redis_url),
            *("--rounds", "2", "--warmup", "0", "--decides", "1", "--queries", "1"),
            *("--checkpoint-runs", "1", "--parked", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    number = r"\d+\.\d\d"
    for label in (
        "decide -> next stop, wall ms",
        "decide, process CPU ms",
        "inbox pending(role, 20) ms",
        "Runner.start to first hold ms",
        "checkpoint run, RedisSaver ms",
    ):
        assert re.search(rf"^{re.escape(label)}\s+({number}\s+){{4}}{number}x$", out, re.M), (
            label,
            out,
        )
    assert re.search(rf"^checkpoint overhead \(paired\)\s+{number}x\s+{number}x\s+", out, re.M)
    assert re.search(r"^decide round trips \(median\)\s+\d+\s+\d+$", out, re.M), out
    assert "WARNING" not in out, out  # one interpreter on both sides: the same libraries
    assert not list(redis_client.scan_iter(match="cbcompare*", count=1000))


def test_sides_with_different_libraries_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    compare = importlib.import_module("compare_commits")
    same = {"redis": "8.2.0", "hiredis": "3.5.0"}
    assert compare.differing_libraries(same, dict(same)) == ""
    assert (
        compare.differing_libraries(same, {"redis": "8.2.0", "hiredis": "-"})
        == "hiredis 3.5.0 vs -"
    )
