"""LangGraph asks for the signature of a saver's ``put_writes`` / ``aput_writes`` at every
invoke (whether it takes ``task_path``): the savers keep it on the method, and it is the
method's own."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import pytest
from langgraph.pregel._checkpoint import put_writes_accepts_task_path

from carebound.checkpoint import AsyncRedisSaver, RedisSaver

METHODS = [
    RedisSaver.put_writes,
    RedisSaver.aput_writes,
    AsyncRedisSaver.put_writes,
    AsyncRedisSaver.aput_writes,
]


def _from_code(method: Any) -> inspect.Signature:
    """The signature ``inspect`` builds from the method's code (a copy without a kept one)."""
    copy = types.FunctionType(
        method.__code__, method.__globals__, method.__name__, method.__defaults__,
        method.__closure__,
    )  # fmt: skip
    copy.__kwdefaults__ = method.__kwdefaults__
    copy.__annotations__ = dict(method.__annotations__)
    return inspect.signature(copy)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__qualname__)
def test_the_signature_is_kept_and_is_the_methods_own(method: Callable[..., Any]) -> None:
    kept = vars(method).get("__signature__")
    assert kept is not None, f"{method.__qualname__} has no kept __signature__"
    assert kept == _from_code(method)
    assert "task_path" in kept.parameters
    assert put_writes_accepts_task_path(method)
