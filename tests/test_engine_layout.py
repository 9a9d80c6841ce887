"""The engine's shape: no module in carebound/engine/ imports redis (the round trips live in
carebound/state/), its modules and classes stay small (<= 500 lines, <= 400 per class), and
only the decision module stores decisions (the sweep goes through it too)."""

from __future__ import annotations

import ast
from pathlib import Path

import carebound.engine

ENGINE = Path(carebound.engine.__file__).parent
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400


def redis_imports(source: str) -> list[str]:
    """The ``redis`` imports in ``source`` (at any depth, TYPE_CHECKING blocks included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "redis"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] if node.module.split(".")[0] == "redis" else []
    return found


def oversized(source: str) -> list[str]:
    """What in ``source`` is too long: the module itself, or a class."""
    too_long = []
    if len(source.splitlines()) > MAX_MODULE_LINES:
        too_long.append("<module>")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                too_long.append(node.name)
    return too_long


DECISION_STORES = frozenset({"decide_and_take", "queue_decide"})
"""The state calls that store a decision."""


def decision_writes(source: str) -> list[str]:
    """The calls in ``source`` that store a decision: the round trips above, or the approval
    store's own ``approvals.decide(...)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, owner = node.func.attr, node.func.value
        if attr in DECISION_STORES or (
            attr == "decide"
            and isinstance(owner, ast.Attribute | ast.Name)
            and (owner.attr if isinstance(owner, ast.Attribute) else owner.id) == "approvals"
        ):
            found.append(f"{attr}:{node.lineno}")
    return found


def _engine_sources() -> dict[str, str]:
    sources = {p.name: p.read_text() for p in sorted(ENGINE.glob("*.py"))}
    assert "runner.py" in sources and "drive.py" in sources
    return sources


def test_no_engine_module_imports_redis() -> None:
    offenders = {
        name: found for name, src in _engine_sources().items() if (found := redis_imports(src))
    }
    assert offenders == {}


def test_engine_modules_and_classes_are_small() -> None:
    offenders = {
        name: found for name, src in _engine_sources().items() if (found := oversized(src))
    }
    assert offenders == {}


def test_only_the_decision_module_stores_decisions() -> None:
    """A reviewer's decision and the deadline sweep's take one path (engine/decide.py)."""
    writers = {name for name, src in _engine_sources().items() if decision_writes(src)}
    assert writers == {"decide.py"}


def test_the_checks_can_fail() -> None:
    assert decision_writes("res = approvals.decide(a, d, now=now, status='expired')\n")
    assert decision_writes("self.core.approvals.decide(a, d)\n")
    assert decision_writes("core.trips.decide_and_take(run_id, step)\n")
    assert decision_writes("self.decider.decide(a, d)\n") == []
    assert redis_imports("import redis\n") == ["redis"]
    assert redis_imports("if TYPE_CHECKING:\n    from redis.client import Pipeline\n") == [
        "redis.client"
    ]
    assert redis_imports("from carebound.state.trips import Client\n") == []
    big_class = "class Big:\n" + "    x = 1\n" * MAX_CLASS_LINES
    assert oversized(big_class) == ["Big"]
    assert oversized("x = 1\n" * (MAX_MODULE_LINES + 1)) == ["<module>"]
