"""carebound's wire packs commands with hiredis (in C) and falls back to its Python loop for
an argument hiredis refuses; both write the same RESP, which a real server reads back."""

from __future__ import annotations

import redis

from carebound._wire import _bulks, pack, shared_wire

ARGS: list[str | bytes | int | float] = [
    "SET", "k", b"\x00\xff", "é\u2603", 0, -(2**63), 2**70, 1.5, 1e-300, float("inf"), "",
]  # fmt: skip


def test_hiredis_and_the_python_loop_write_the_same_command() -> None:
    assert pack(ARGS) == b"*%d\r\n" % len(ARGS) + _bulks(ARGS)


def test_an_argument_hiredis_refuses_goes_through_the_loop() -> None:
    assert pack(["SET", "k", True]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"


def test_commands_and_scripts_round_trip_on_a_real_server(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    wire = shared_wire(redis_client)
    key = f"{key_prefix}:wire"
    value = "é\u2603".encode() + b"\x00\xff"
    assert wire.call_many([["SET", key, value], ["GET", key]]) == [b"OK", value]
    script = "return {KEYS[1], ARGV[1], ARGV[2]}"
    sha = redis_client.script_load(script)
    assert wire.evalsha(sha, [key], [7, b"\x01"]) == [key.encode(), b"7", b"\x01"]
    redis_client.delete(key)
