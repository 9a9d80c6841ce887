"""The README's examples run as written (they are the front door)."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest
import redis

from tests.conftest import PROJECT

README = (PROJECT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_a_library_example() -> None:
    assert PYTHON_BLOCKS


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_example_runs_and_prints_what_its_comments_say(
    block: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("CAREBOUND_REDIS_URL", url)
    monkeypatch.chdir(PROJECT)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
    finally:
        client.flushdb()
        client.close()
    printed = out.getvalue().splitlines()
    expected = [
        line.split("#", 1)[1].split(":")[0].strip()
        for line in block.splitlines()
        if line.startswith("print(") and "#" in line
    ]
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected, strict=True):
        assert got == want, f"README says {want!r}, the code printed {got!r}"
    assert os.environ["CAREBOUND_REDIS_URL"] == url


_SHADOWED = """
import sys
# As after 'pip install .' (not -e): no editable finder maps carebound's folders, and the
# checkout's carebound/ is found first (the current directory leads sys.path).
def origin(finder):  # finders are classes or instances
    return (finder if isinstance(finder, type) else type(finder)).__module__
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in origin(f).lower()]
sys.path.insert(0, "")
for name in [m for m in sys.modules if m == "carebound" or m.startswith("carebound.")]:
    del sys.modules[name]
exec(compile(sys.stdin.read(), "README.md", "exec"), {})
"""


def test_library_example_runs_from_the_checkout_root_as_after_pip_install(
    redis_url: str,
) -> None:
    """Run from the repository's root, Python imports the checkout's ``carebound/`` rather
    than the installed one; the example still finds ``carebound.guardrails`` and the rest
    (``carebound/__init__.py`` completes a checkout)."""
    import subprocess
    import sys

    url = redis_url.rsplit("/", 1)[0] + "/10"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SHADOWED],
            input=PYTHON_BLOCKS[0],
            cwd=PROJECT,
            env={**os.environ, "CAREBOUND_REDIS_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        client.flushdb()
        client.close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "True"  # the last line: the audit chain holds
