"""Checkpoint writes on the calling thread, for carebound's own graph runs.

LangGraph's sync loop hands every checkpoint write to a thread pool that it creates for each
``invoke`` (``langgraph.pregel._executor.BackgroundExecutor``, through langchain-core's
``get_executor_for_config``). At ``durability="sync"`` the loop waits for each step's save
before the next step anyway, and carebound's graphs run one task per step, so the pool only
adds a thread start, a hand-off per write and a join per ``invoke``: about 1 ms of a ~8 ms
decide on a 2-vCPU machine (``benchmarks/inbox.py``).

Inside :func:`inline_writes` the executor LangGraph asks for runs each submitted call at once
on the calling thread; its result or error lands in the returned future exactly as a pool's
would, so LangGraph's ordering and error handling are unchanged. Everywhere else (any other
graph in the process, LangGraph's prebuilt tool node) the lookup goes to langchain-core as
before. Should a LangGraph release stop looking the executor up there, :func:`install` leaves
it alone and runs simply keep the pool (``tests/test_inline_writes.py`` notices).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from langchain_core.runnables.config import get_executor_for_config

_T = TypeVar("_T")
_INLINE: ContextVar[bool] = ContextVar("carebound_inline_writes", default=False)


class InlineExecutor(Executor):
    """Runs each submitted call immediately, on the thread that submits it."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # a pool would keep it in the future too
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


@contextmanager
def _executor_for_config(config: Any) -> Iterator[Executor]:
    if _INLINE.get():
        yield InlineExecutor()
    else:
        with get_executor_for_config(config) as executor:
            yield executor


def install() -> bool:
    """Route LangGraph's background-executor lookup through :func:`_executor_for_config`;
    True when LangGraph looks it up where expected (and now through carebound)."""
    try:
        from langgraph.pregel import _executor
    except ImportError:  # pragma: no cover - a LangGraph without this module
        return False
    current = getattr(_executor, "get_executor_for_config", None)
    if current is _executor_for_config:
        return True
    if current is not get_executor_for_config:
        return False  # not what this module was written against: leave LangGraph alone
    setattr(_executor, "get_executor_for_config", _executor_for_config)  # noqa: B010
    return True


@contextmanager
def inline_writes() -> Iterator[None]:
    """Within this block, graph runs on this thread write their checkpoints inline."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)
