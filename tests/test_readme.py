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
