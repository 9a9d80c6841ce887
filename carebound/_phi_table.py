"""The PHI table a run pins at start: for each tool of its agent, the PHI classes it touches
and the arguments it declares public.

:class:`~carebound._phi.PhiPolicy` masks with it; pinned on the run (``RunStore.create``), it
lets a command that only reads (``carebound show``, ``audit``) mask a run's PHI without
loading the agents. Stored as JSON: ``{tool: [[phi classes], [public args]]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class ToolPhi(Protocol):
    """What masking needs to know of a tool: a :class:`~carebound.tools.ToolSpec`, or the
    :class:`StoredToolPhi` a run pinned."""

    @property
    def phi(self) -> frozenset[str]:
        """PHI categories the tool touches (empty: none)."""

    @property
    def public_args(self) -> frozenset[str]:
        """Arguments of a PHI tool shown unmasked."""


@dataclass(frozen=True)
class StoredToolPhi:
    """A tool's PHI classes and public arguments as a run pinned them at start."""

    phi: frozenset[str]
    public_args: frozenset[str]


def table_json(tools: Mapping[str, ToolPhi]) -> str:
    """The PHI table of an agent's tools, as JSON."""
    table = {
        name: [sorted(spec.phi), sorted(spec.public_args)] for name, spec in sorted(tools.items())
    }
    return json.dumps(table, separators=(",", ":"))


def parse_table(raw: str | bytes) -> dict[str, StoredToolPhi]:
    """A table written by :func:`table_json`."""
    return {
        str(name): StoredToolPhi(frozenset(phi), frozenset(public))
        for name, (phi, public) in json.loads(raw).items()
    }


PHI_DETAIL_KEYS = frozenset({"before", "after", "value", "values", "args", "proposed", "diff"})
"""Audit-detail keys that carry data values (masked for PHI tools); the other keys carry ids,
codes, statuses and the agents' PHI-free reasons."""

EFFECT_REF = "ref:effect/"
"""How a stored effect event names a value it does not copy: ``ref:effect/<ledger key>#<name>``
(the value is the effect ledger entry's result field ``<name>``)."""

_DETAIL_LIMIT = 200


def effect_detail_refs(touches_phi: bool, key: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """An effect's audit detail as stored. For a tool that touches PHI its data values (the
    before and after of a fix) are not copied into the audit trail, which is kept, indexed
    across runs and archived longer than the run (minimum necessary): each names where the
    value is kept instead, the effect ledger entry's result under ``key``, which an entitled
    reveal reads (:func:`resolve_effect_refs`) and which is purged with the run."""
    if not touches_phi:
        return dict(detail)
    return {
        name: f"{EFFECT_REF}{key}#{name}"[:_DETAIL_LIMIT]
        if name in PHI_DETAIL_KEYS and value not in (None, "")
        else value
        for name, value in detail.items()
    }


def resolve_effect_refs(detail: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` with each ``ref:effect/<key>#<name>`` replaced by that effect's result field
    (``results``: ledger results by key); a reference whose entry is gone (purged) stays."""
    out = dict(detail)
    for name, value in detail.items():
        if not (isinstance(value, str) and value.startswith(EFFECT_REF)):
            continue
        key, _, field = value[len(EFFECT_REF) :].rpartition("#")
        result = results.get(key)
        if isinstance(result, Mapping) and field in result:
            found = result[field]
            flat = found is None or isinstance(found, str | int | float | bool)
            out[name] = found if flat else str(found)  # as the tools' audit details spell it
    return out
