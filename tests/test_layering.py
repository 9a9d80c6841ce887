"""Which packages may import which: the import graph between carebound's packages is pinned.

Every module of the distribution is parsed (``carebound/``, and ``agents/``, ``tools/``,
``guardrails/`` as ``carebound.agents`` / ``.tools`` / ``.guardrails``); every import counts,
including imports inside functions (lazy) and under ``TYPE_CHECKING``. A name imported from
the top-level ``carebound`` facade counts as an import of the module that defines it (its
export table), and the facade itself is not a node.

A node is a top-level package (``cli``, ``web``, ``engine``, ``agents``, ``tools``, ...), or a
top-level module of ``carebound`` on its own (``_async_runner``, ``_errors``, ``clock`` ...).

- ``KNOWN_CYCLES`` lists today's import edges that lie on a cycle between nodes. It may only
  shrink: a new cycle fails the test, and so does a listed edge that is no longer on a cycle
  (remove it from the list, so the list stays true).
- ``FORBIDDEN`` lists directions the architecture rules out and that already hold;
  ``FORBIDDEN_OUTSIDE`` the same for distributions outside carebound (``redis`` ...).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import carebound
from tests.conftest import PROJECT

#: Source folders of the distribution, and the package each one imports as.
ROOTS = {
    "carebound": PROJECT / "carebound",
    "carebound.agents": PROJECT / "agents",
    "carebound.tools": PROJECT / "tools",
    "carebound.guardrails": PROJECT / "guardrails",
}

#: Import edges (importer, imported) that lie on a cycle today. May only shrink.
KNOWN_CYCLES: set[tuple[str, str]] = set()

#: The nodes of state/: one per module (see ``_node``), plus the package itself.
STATE = frozenset(
    {"state"}
    | {f"state.{m.stem}" for m in (PROJECT / "carebound" / "state").glob("*.py")}
    | {
        f"state.{d.name}"
        for d in (PROJECT / "carebound" / "state").iterdir()
        if d.is_dir() and (d / "__init__.py").exists()
    }
)

#: Engine-level nodes: the run loop and what drives it.
ENGINE = frozenset({"engine", "_async_runner"})
#: The front ends (``__main__``: ``python -m carebound``, the CLI).
FRONTS = frozenset({"cli", "web", "__main__"})
#: Nodes below the engine: libraries the engine uses, which never reach back up.
BELOW_ENGINE = frozenset(
    {"agents", "tools", "guardrails", "approvals", "assist", "audit", "checkpoint", "store", "fhir",
     "domain", "clock", "_errors", "_wire", "_limits", "_principal"} | STATE
)  # fmt: skip

#: (why, importers, imported): no importer node imports an imported node. ``None`` as the
#: importers means every node outside ``imported``.
FORBIDDEN: list[tuple[str, frozenset[str] | None, frozenset[str]]] = [
    ("only the front ends import the front ends", None, FRONTS),
    ("the engine's libraries never import it", BELOW_ENGINE, ENGINE | {"scenario"}),
    ("imports point one way: agents -> tools -> domain", frozenset({"tools"}),
     frozenset({"agents"})),
    ("pure rules do no agent or tool work", frozenset({"domain", "fhir"}),
     ENGINE | FRONTS | {"agents", "tools", "guardrails", "scenario", "store",
                        "approvals", "audit", "checkpoint"} | STATE),
    ("the saver is LangGraph's, not an agent's", frozenset({"checkpoint"}),
     ENGINE | FRONTS | {"agents", "tools", "guardrails", "scenario"}),
]  # fmt: skip

#: (why, importers, outside packages): no importer node imports any of those distributions.
FORBIDDEN_OUTSIDE: list[tuple[str, frozenset[str], frozenset[str]]] = [
    ("pure rules do no I/O", frozenset({"domain", "fhir"}),
     frozenset({"redis", "langgraph", "langchain_core", "socket", "subprocess", "httpx"})),
    ("agents and the guardrails reach Redis only through the engine",
     frozenset({"agents", "guardrails", "_agent"}), frozenset({"redis"})),
    ("the engine speaks no Redis: every key and round trip lives under state/",
     frozenset({"engine"}), frozenset({"redis"})),
]  # fmt: skip


#: Connector implementations: chosen where a Runner is composed, never named by the engine.
IMPLEMENTATIONS = (
    "carebound.tools.connectors.simulated",
    "carebound.tools.connectors.fhir_rest",
    "carebound.tools.connectors.outreach_channels",
    "carebound.tools.connectors.fhir_world",
    "carebound.tools.connectors._office_player",
)

#: (why, importer modules, imported modules), by dotted-name prefix: finer than FORBIDDEN.
FORBIDDEN_MODULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("the engine is given a connectors factory and imports no implementation",
     ("carebound.engine", "carebound._async_runner", "carebound._agent"), IMPLEMENTATIONS),
    ("the connector Protocols load an implementation only when asked (importlib, by name)",
     ("carebound.tools.connectors._", "carebound.tools.connectors.config",
      "carebound.tools.connectors"), IMPLEMENTATIONS),
]  # fmt: skip


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the distribution: (dotted name, file)."""
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = list(rel.parts)
            if package == "carebound" and parts and parts[0] in {"agents", "tools", "guardrails"}:
                continue  # the mapped folders are read from their own roots
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join([package, *parts]), path


def _imports(module: str, path: Path) -> Iterator[str]:
    """The dotted names ``module`` imports: modules, or ``package.name`` for a from-import."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                yield f"{source}.{alias.name}"


def _node(name: str) -> str | None:
    """The graph node an imported dotted name belongs to (None: outside carebound)."""
    parts = name.split(".")
    if parts[0] != "carebound":
        return None
    if len(parts) == 1:
        return "carebound"
    if parts[1] == "__init__":
        return "carebound"
    if len(parts) == 2 and parts[1] in carebound._EXPORTS:
        return _node(carebound._EXPORTS[parts[1]])  # ``from carebound import Runner``
    if parts[1] == "state" and len(parts) > 2:
        # state/ has layers of its own: its primitives (keys, Lua, pipeline, lease, ledger,
        # runs) sit below the stores that use them, and its round trips (trips.py) above
        # them; so each of its modules is a node, and a cycle through them still fails.
        return "state." + parts[2]
    return parts[1]


def import_graph() -> dict[str, set[str]]:
    """Node -> the nodes it imports (the top-level facade left out)."""
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        source = _node(module)
        if source is None or source == "carebound":
            continue
        targets = graph.setdefault(source, set())
        for name in _imports(module, path):
            target = _node(name)
            if target is not None and target not in {source, "carebound"}:
                targets.add(target)
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> dict[str, str | None]:
    """Breadth-first: every node reachable from ``start``, with the node it was reached from."""
    came: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        step = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt not in came:
                    came[nxt] = node
                    step.append(nxt)
        frontier = step
    return came


def cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges (a, b) where b leads back to a: exactly the edges that lie on some cycle."""
    return {(a, b) for a, targets in graph.items() for b in targets if a in _reach(graph, b)}


def _cycle_through(graph: dict[str, set[str]], edge: tuple[str, str]) -> str:
    """A shortest cycle through ``edge``, drawn ``a -> b -> ... -> a``."""
    a, b = edge
    came = _reach(graph, b)
    path = [a]
    node: str | None = came[a]
    while node is not None:
        path.append(node)
        node = came[node]
    return " -> ".join([a, *reversed(path[1:]), a]) if len(path) > 1 else f"{a} -> {b} -> {a}"


def test_no_new_import_cycle() -> None:
    graph = import_graph()
    found = cycle_edges(graph)
    new = sorted(found - KNOWN_CYCLES)
    assert not new, "new import cycle(s):\n" + "\n".join(_cycle_through(graph, e) for e in new)


def test_known_cycles_are_still_true() -> None:
    gone = sorted(KNOWN_CYCLES - cycle_edges(import_graph()))
    assert not gone, f"these edges are no longer on a cycle: remove them from KNOWN_CYCLES: {gone}"


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a ``FORBIDDEN`` direction, explained."""
    return [
        f"{why}: {a} imports {b}"
        for why, importers, imported in FORBIDDEN
        for a in sorted(graph)
        if (a not in imported if importers is None else a in importers)
        for b in sorted(graph[a] & imported)
    ]


def outside_imports() -> dict[str, set[str]]:
    """Node -> the distributions outside carebound it imports (top-level names)."""
    found: dict[str, set[str]] = {}
    for module, path in _modules():
        node = _node(module)
        for name in _imports(module, path):
            if node is not None and _node(name) is None:
                found.setdefault(node, set()).add(name.split(".")[0])
    return found


def test_forbidden_outside_imports() -> None:
    found = outside_imports()
    broken = [
        f"{why}: {node} imports {name}"
        for why, importers, names in FORBIDDEN_OUTSIDE
        for node in sorted(importers & found.keys())
        for name in sorted(found[node] & names)
    ]
    assert not broken, "\n".join(broken)
    assert "redis" in found["checkpoint"]  # the check sees outside imports at all


def test_forbidden_directions() -> None:
    broken = forbidden_imports(import_graph())
    assert not broken, "\n".join(broken)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p if p.endswith("_") else p + ".") for p in prefixes)


def forbidden_module_imports(pairs: Iterator[tuple[str, str]]) -> list[str]:
    """Every (module, imported name) that breaks a ``FORBIDDEN_MODULES`` rule, explained."""
    return [
        f"{why}: {module} imports {name}"
        for module, name in pairs
        for why, importers, imported in FORBIDDEN_MODULES
        if _under(module, importers) and not _under(module, imported) and _under(name, imported)
    ]


def _module_imports() -> Iterator[tuple[str, str]]:
    for module, path in _modules():
        for name in _imports(module, path):
            yield module, name


def test_forbidden_module_imports() -> None:
    broken = forbidden_module_imports(_module_imports())
    assert not broken, "\n".join(broken)


def test_the_module_rules_can_fail() -> None:
    simulated, rest = IMPLEMENTATIONS[:2]
    pairs = iter([
        ("carebound.engine.core", f"{simulated}.World"),
        ("carebound.tools.connectors._factory", f"{rest}.build_ehr"),
        (f"{simulated}._world", f"{simulated}._ehr"),
        ("carebound.scenario._run", f"{simulated}.World"),
    ])  # fmt: skip
    broken = forbidden_module_imports(pairs)
    assert len(broken) == 2, broken
    assert broken[0].startswith("the engine is given a connectors factory")
    assert "carebound.tools.connectors._factory imports" in broken[1]


def test_the_parser_counts_lazy_relative_and_facade_imports(tmp_path: Path) -> None:
    """Each kind of import reaches the graph (else the pins above would mean nothing)."""
    source = tmp_path / "pkg" / "__init__.py"
    source.parent.mkdir()
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import _sibling\n"
        "from .sub import thing\n"
        "if TYPE_CHECKING:\n"
        "    from carebound.audit import AuditEvent\n"
        "def later():\n"
        "    import carebound.web\n"
        "    from carebound import Runner\n"
    )
    names = set(_imports("carebound.cli", source))
    assert {"carebound.cli._sibling", "carebound.cli.sub.thing"} <= names
    nodes = {_node(name) for name in names}
    assert {"audit", "web", _node(carebound._EXPORTS["Runner"])} <= nodes


def test_the_checks_can_fail() -> None:
    """A cycle and a forbidden edge added to a copy of today's graph are both reported."""
    graph = {node: set(targets) for node, targets in import_graph().items()}
    graph.setdefault("fhir", set()).add("cli")  # fhir -> cli -> ... -> fhir
    assert ("fhir", "cli") in cycle_edges(graph) - KNOWN_CYCLES
    assert "only the front ends import the front ends: fhir imports cli" in forbidden_imports(graph)
    assert _cycle_through(graph, ("fhir", "cli")).startswith("fhir -> cli -> ")
