"""The README's examples run as written (they are the front door)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator

import pytest

from tests.conftest import PROJECT
from tests.servers import own_server

README = (PROJECT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.fixture
def owned_redis_url() -> Iterator[str]:
    """A Redis server of the examples' own, started empty and stopped after: the examples store
    their runs at CAREBOUND_REDIS_URL without a key prefix, and the server the suite is given
    (CAREBOUND_TEST_REDIS_URL) may hold a user's own data in any database."""
    with own_server() as server:
        yield server.url


def test_readme_has_a_library_example() -> None:
    assert PYTHON_BLOCKS


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_example_runs_and_prints_what_its_comments_say(
    block: str, owned_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = owned_redis_url
    monkeypatch.setenv("CAREBOUND_REDIS_URL", url)
    monkeypatch.chdir(PROJECT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
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
    owned_redis_url: str,
) -> None:
    """Run from the repository's root, Python imports the checkout's ``carebound/`` rather
    than the installed one; the example still finds ``carebound.guardrails`` and the rest
    (``carebound/__init__.py`` completes a checkout)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SHADOWED],
        input=PYTHON_BLOCKS[0],
        cwd=PROJECT,
        env={**os.environ, "CAREBOUND_REDIS_URL": owned_redis_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "True"  # the last line: the audit chain holds
