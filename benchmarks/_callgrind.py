"""Counting a process's CPU instructions under valgrind's callgrind (the ``*_instructions.py``
benchmarks): steady on a busy machine, where wall and CPU times are not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def require_valgrind() -> None:
    """Exit with a clear message unless valgrind and callgrind_control are installed."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install valgrind (apt-get install valgrind)")


@contextmanager
def counting() -> Iterator[None]:
    """Inside a process run by :func:`instructions`: count the instructions of the block only."""
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def instructions(argv: Sequence[str], *, what: str) -> int:
    """Run ``argv`` under callgrind, counting switched off until it asks (:func:`counting`);
    the instructions counted (``PYTHONHASHSEED=0``). Exits naming ``what`` if it fails."""
    with tempfile.TemporaryDirectory(prefix="cb-callgrind-") as tmp:
        done = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                f"--callgrind-out-file={tmp}/out",
                *argv,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"{what} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))
