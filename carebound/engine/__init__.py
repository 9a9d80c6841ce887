"""The engine: the :class:`Runner` facade and the parts it delegates to.

``runner`` (the facade), ``drive`` (lease -> graph -> settle), ``decide`` (a reviewer's
decision), ``wake`` (events, timers, sweep, recover), ``graph`` with its nodes
(``node_kit``, ``gate_node``, ``execute_node``), ``results`` (what callers get back), and
``core`` (what the parts share). No module here imports ``redis``: the round trips live in
:mod:`carebound.state.trips`.
"""

from carebound.engine.results import DecideResult, RecoverReport, RunView, SweepReport
from carebound.engine.runner import Runner, new_run_id

__all__ = ["DecideResult", "RecoverReport", "RunView", "Runner", "SweepReport", "new_run_id"]
