"""Mutated scenario material for the input fuzz test and the long fuzz benchmark.

A valid scenario set (the hello scenario with its case, an EHR bundle, an ERP file and a copy
of the default policy pack) is mutated one file at a time, either as a tree (a node replaced by
a hostile value, deleted, or given an unknown sibling) or as text (cut, spliced, bytes that are
not UTF-8). :func:`run_one` runs the result through the real CLI (``carebound run --json``) and
reports what an input must never cause: an exit code outside 0/1/2, a traceback, or a change to
another run's keys.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import yaml
from hypothesis import strategies as st
from typer.testing import CliRunner

PROJECT = Path(__file__).resolve().parents[1]
FILES = {
    "scenario": "scenario.yaml",
    "case": "case.json",
    "ehr": "ehr.json",
    "erp": "erp.json",
    "pack": "pack.yaml",
}
ALLOWED_EXITS = frozenset({0, 1, 2})
_DEEP = re.compile(r"""["']?__DEEP_(\d+)__["']?""")


def base_material() -> dict[str, Any]:
    """The valid documents every example starts from, by name (see :data:`FILES`)."""
    scenario = yaml.safe_load((PROJECT / "scenarios" / "hello_hold.yaml").read_text())
    scenario["case"] = FILES["case"]
    scenario["policy"] = FILES["pack"]
    scenario["start"] = "2026-03-02T09:00:00Z"
    scenario["until"] = "P10D"
    scenario["world"]["ehr"] = FILES["ehr"]
    scenario["world"]["erp"] = FILES["erp"]
    case = json.loads((PROJECT / "scenarios" / "cases" / "hello_referral.json").read_text())
    return {
        "scenario": scenario,
        "case": case,
        "ehr": json.loads(json.dumps(case)),
        "erp": json.loads((PROJECT / "scenarios" / "erp" / "billing_clean.json").read_text()),
        "pack": yaml.safe_load((PROJECT / "guardrails" / "packs" / "default.yaml").read_text()),
    }


HOSTILE_SCALARS: list[Any] = [
    "2026-03-02T09:00:00",  # no time zone
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30",
    "P100000Y",
    "P999999999D",
    "-P1D",
    "PT-1S",
    "",
    None,
    True,
    0,
    -1,
    10**30,
    1e308,
    "\udc80",  # a lone surrogate
    "casey\udc00",
    "\x1b[2J\x1b]8;;https://evil.example/\x1b\\x\x1b]8;;\x1b\\",
    "a\x00b",
    "\u202eevil",
    "x" * 10_000,
    [],
    {},
    "__DEEP_1000__",
    "__DEEP_70__",
]
_scalars = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(lambda n: f"__DEEP_{n}__", st.integers(min_value=1, max_value=3000)),
)
hostile_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@dataclass(frozen=True)
class Mutation:
    """One change to one file of the material."""

    target: str
    """Which file (a key of :data:`FILES`)."""
    kind: str
    """``replace``, ``delete``, ``add``, ``cut``, ``splice`` or ``bytes``."""
    path: tuple[int | str, ...]
    """Where in the tree: a name picks that key, a number a child (modulo the node's size)."""
    value: Any = None
    position: float = 0.0
    """Where in the text, as a fraction of its length."""


mutations = st.builds(
    Mutation,
    target=st.sampled_from(sorted(FILES)),
    kind=st.sampled_from(["replace", "replace", "replace", "delete", "add", "cut", "splice"]),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=5).map(tuple),
    value=hostile_values,
    position=st.floats(min_value=0, max_value=1),
) | st.builds(
    Mutation,
    target=st.sampled_from(sorted(FILES)),
    kind=st.just("bytes"),
    path=st.just(()),
    value=st.binary(min_size=1, max_size=8),
    position=st.floats(min_value=0, max_value=1),
)


def _mutate_tree(doc: Any, mutation: Mutation) -> Any:
    """Walk ``mutation.path`` (a name picks that key; a number picks a child modulo the
    node's size) and apply the change at the last step."""
    if not mutation.path or not isinstance(doc, dict | list) or not doc:
        return mutation.value if mutation.kind == "replace" else doc
    parent: Any = doc
    for depth, step in enumerate(mutation.path):
        if isinstance(parent, dict):
            key: Any = step if step in parent else list(parent)[_index(step) % len(parent)]
        else:
            key = step % len(parent) if isinstance(step, int) else 0
        child = parent[key]
        last = depth == len(mutation.path) - 1
        if not last and isinstance(child, dict | list) and child:
            parent = child
            continue
        if mutation.kind == "replace":
            parent[key] = mutation.value
        elif mutation.kind == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[f"unknown_{depth}"] = mutation.value
        else:
            parent.append(mutation.value)
        break
    return doc


def _index(step: int | str) -> int:
    return step if isinstance(step, int) else zlib.crc32(step.encode())


def _serialise(name: str, doc: Any) -> str:
    if FILES[name].endswith(".yaml"):
        text = yaml.safe_dump(doc, allow_unicode=False, sort_keys=False, width=10_000)
    else:
        text = json.dumps(doc, default=str)
    return _DEEP.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)


def write_material(folder: Path, mutation: Mutation) -> Path:
    """Write the material with ``mutation`` applied; return the scenario file."""
    material = base_material()
    texts: dict[str, bytes] = {}
    for name, original in material.items():
        doc = original
        if name == mutation.target and mutation.kind in ("replace", "delete", "add"):
            doc = _mutate_tree(original, mutation)
        texts[name] = _serialise(name, doc).encode("utf-8", "surrogatepass")
    raw = texts[mutation.target]
    at = int(len(raw) * mutation.position)
    if mutation.kind == "cut":
        texts[mutation.target] = raw[:at]
    elif mutation.kind == "splice":
        insert = _serialise(mutation.target, mutation.value).encode("utf-8", "surrogatepass")
        texts[mutation.target] = raw[:at] + insert + raw[at:]
    elif mutation.kind == "bytes":
        texts[mutation.target] = raw[:at] + bytes(mutation.value) + raw[at:]
    for name, data in texts.items():
        (folder / FILES[name]).write_bytes(data)
    return folder / FILES["scenario"]


def tagged_state(client: redis.Redis, prefix: str, run_id: str) -> dict[bytes, bytes | None]:
    """Every key of one run (its hash tag) with its serialised value."""
    return {
        key: client.dump(key)
        for key in client.scan_iter(match=f"{prefix}:{{{run_id}}}*", count=1000)
    }


@dataclass(frozen=True)
class Outcome:
    """What one fuzzed input did."""

    exit_code: int
    problem: str | None
    """Why the input broke a rule (None: it did not)."""


def run_one(
    mutation: Mutation,
    *,
    client: redis.Redis,
    prefix: str,
    bystander: str,
    before: dict[bytes, bytes | None],
) -> Outcome:
    """Run the mutated material through ``carebound run --json`` and judge the result."""
    from carebound.cli import app

    folder = Path(tempfile.mkdtemp(prefix="cb-fuzz-"))
    try:
        scenario = write_material(folder, mutation)
        result = CliRunner().invoke(app, ["run", str(scenario), "--json"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    printed = result.stdout + result.stderr
    problem = None
    if result.exit_code not in ALLOWED_EXITS:
        problem = f"exit {result.exit_code}: {printed[-600:]}"
    elif "Traceback" in printed or not (
        result.exception is None or isinstance(result.exception, SystemExit)
    ):
        problem = f"traceback or escaped exception {result.exception!r}: {printed[-600:]}"
    elif tagged_state(client, prefix, bystander) != before:
        problem = "another run's keys changed"
    return Outcome(result.exit_code, problem)


KNOWN_CRASHERS = [
    Mutation("scenario", "replace", ("start",), "2026-03-02T09:00:00"),
    Mutation("scenario", "replace", ("until",), "P100000Y"),
    Mutation("scenario", "replace", ("world", "replies", 0, "after"), "P100000Y"),
    Mutation("scenario", "add", ("name",), "__DEEP_1000__"),
    Mutation("pack", "add", ("name",), "__DEEP_1000__"),
    Mutation("erp", "replace", ("purchase_orders",), "__DEEP_900__"),
    Mutation("case", "replace", ("entry", 0, "resource", "status"), "__DEEP_900__"),
    Mutation("pack", "replace", ("reviewers", 0, "name"), "Casey \udc80"),
    Mutation("scenario", "replace", ("agent",), "nobody"),
    Mutation("scenario", "replace", ("decisions", 0, "role"), "billing_reviewer"),
]
"""Inputs that made ``carebound run`` exit 70, 3 or 5 before the input limits (issue 12 and
the long fuzz): every fuzz run tries them first."""
