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
from typing import Protocol


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
