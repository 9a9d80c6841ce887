"""The engine: the :class:`Runner` facade and the parts it delegates to.

``runner`` (the facade), ``drive`` (lease -> graph -> settle), ``decide`` (a reviewer's
decision), ``wake`` (events, timers, sweep, recover), ``graph`` with its nodes
(``node_kit``, ``gate_node``, ``execute_node``), ``results`` (what callers get back),
``runner_args`` (what a Runner checks of its arguments when it is made), and ``core`` (what
the parts share). No module here imports ``redis``: the round trips live in
:mod:`carebound.state.trips`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound.engine.results import DecideResult as DecideResult
    from carebound.engine.results import RecoverReport as RecoverReport
    from carebound.engine.results import RunView as RunView
    from carebound.engine.results import SweepReport as SweepReport
    from carebound.engine.runner import Runner as Runner
    from carebound.engine.start import new_run_id as new_run_id

__all__ = ["DecideResult", "RecoverReport", "RunView", "Runner", "SweepReport", "new_run_id"]

_HOMES = {"Runner": "runner", "new_run_id": "start"}


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing ``carebound.engine.results`` (what readers of a run
    # need) must not load the runner, and with it LangGraph.
    if name not in __all__:
        raise AttributeError(f"module 'carebound.engine' has no attribute {name!r}")
    module = importlib.import_module(f"carebound.engine.{_HOMES.get(name, 'results')}")
    return getattr(module, name)
