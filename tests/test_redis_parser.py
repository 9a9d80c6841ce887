"""carebound's Redis clients parse replies with hiredis, redis-py's C parser: it is a declared
dependency (not only the bench extra's), and a client built as carebound builds one uses it. In
pure Python, parsing the replies took most of an inbox page's CPU time."""

from __future__ import annotations

import re
import tomllib

import redis
from redis._parsers import _HiredisParser

from tests.conftest import PROJECT


def test_hiredis_is_a_dependency_of_the_package() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    assert "hiredis" in names, f"hiredis is not in [project] dependencies: {names}"


def test_a_client_parses_replies_with_hiredis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    connection = client.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser), type(connection._parser)
        assert client.ping()
    finally:
        client.connection_pool.release(connection)
        client.close()
