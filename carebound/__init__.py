"""carebound: bounded LangGraph agents for healthcare operations.

Agents propose tool calls; a gate outside the model checks every call against the agent's
typed grant and the organisation's hold policy, parks the run for a human reviewer when a
guardrail fires, and keeps the run's state in Redis so it can wait for days and resume anywhere.

The public names are listed once, in the export table below: type checkers read it as imports,
and at run time it is read to load each name on first use (so ``import carebound.cli``, and
``carebound --help``, stay fast). ``tests/test_package.py`` pins it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the export table: one public name a line, from the module that defines it
    # (``import X as X`` marks a re-export for type checkers)
    from carebound._agent import AgentContext as AgentContext
    from carebound._agent import AgentDefinition as AgentDefinition
    from carebound._agent import CallResult as CallResult
    from carebound._agent import FinishSpec as FinishSpec
    from carebound._agent import Plan as Plan
    from carebound._agent import PlannerView as PlannerView
    from carebound._agent import ProposedCall as ProposedCall
    from carebound._agent import RunEvent as RunEvent
    from carebound._agent import WaitSpec as WaitSpec
    from carebound._async_runner import AsyncRunner as AsyncRunner
    from carebound._errors import AlreadyDecidedError as AlreadyDecidedError
    from carebound._errors import CareboundError as CareboundError
    from carebound._errors import DecisionRefusedError as DecisionRefusedError
    from carebound._errors import LeaseLostError as LeaseLostError
    from carebound._errors import NotFoundError as NotFoundError
    from carebound._errors import ReadDeniedError as ReadDeniedError
    from carebound._errors import RunIdTakenError as RunIdTakenError
    from carebound._errors import RunStateError as RunStateError
    from carebound._errors import StoreUnavailableError as StoreUnavailableError
    from carebound._errors import StoreWriteRefusedError as StoreWriteRefusedError
    from carebound._report import RunReport as RunReport
    from carebound._report import run_report as run_report
    from carebound.approvals import ApprovalRequest as ApprovalRequest
    from carebound.approvals import ApprovalView as ApprovalView
    from carebound.approvals import Approve as Approve
    from carebound.approvals import Decision as Decision
    from carebound.approvals import DecisionPacket as DecisionPacket
    from carebound.approvals import Edit as Edit
    from carebound.approvals import Escalate as Escalate
    from carebound.approvals import Reject as Reject
    from carebound.assist import ModelCall as ModelCall
    from carebound.assist import ModelConfig as ModelConfig
    from carebound.assist import ModelConfigError as ModelConfigError
    from carebound.clock import Clock as Clock
    from carebound.clock import SystemClock as SystemClock
    from carebound.clock import VirtualClock as VirtualClock
    from carebound.engine.results import DecideResult as DecideResult
    from carebound.engine.results import RecoverReport as RecoverReport
    from carebound.engine.results import RunView as RunView
    from carebound.engine.results import SweepReport as SweepReport
    from carebound.engine.runner import Runner as Runner
    from carebound.guardrails import Grant as Grant
    from carebound.guardrails import PolicyPack as PolicyPack
    from carebound.guardrails import load_policy_pack as load_policy_pack
    from carebound.tools import EffectClass as EffectClass
    from carebound.tools import ToolContext as ToolContext
    from carebound.tools import ToolSpec as ToolSpec
    from carebound.tools import tool as tool


def _export_table() -> dict[str, str]:
    """The export table above, read from this file: public name -> its module."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )  # fmt: skip
    return {
        alias.asname or alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


class _CheckoutFolders(importlib.abc.MetaPathFinder):
    """Finds ``carebound.agents``, ``carebound.tools`` and ``carebound.guardrails`` in the
    top-level folders of a source checkout, as an installed carebound has them inside.

    ``pyproject.toml`` maps ``agents/``, ``tools/`` and ``guardrails/`` into this package
    (``package-dir``); an installed or editable carebound is whole. But Python puts the
    current directory first on ``sys.path``, so a program run from the checkout's root imports
    the checkout's ``carebound/``, which has none of the three, even after ``pip install .``.
    With this finder (last on ``sys.meta_path``, so an installed layout is found first) that
    checkout is whole too, and the README's example runs as written from anywhere.
    """

    def __init__(self, folders: dict[str, Path]) -> None:
        self._folders = folders

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        folder = self._folders.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def _complete_a_checkout() -> None:
    here = Path(__file__).resolve().parent
    root = here.parent
    names = ("agents", "tools", "guardrails")
    if (here / "guardrails").is_dir() or not (root / "pyproject.toml").is_file():
        return  # an installed carebound: its subpackages are inside it
    folders = {f"{__name__}.{n}": root / n for n in names if (root / n / "__init__.py").is_file()}
    if folders and not any(isinstance(f, _CheckoutFolders) for f in sys.meta_path):
        sys.meta_path.append(_CheckoutFolders(folders))


_complete_a_checkout()
_EXPORTS = _export_table()
__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carebound' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
