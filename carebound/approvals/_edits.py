"""A reviewer's edit: what it changed.

An edit is shown to reviewers and written to the audit trail as a list of changes, one per
argument, before -> after (see ``_decision_audit`` for how PHI values are kept out of it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ABSENT = object()


class ArgChange(BaseModel):
    """One argument an edit changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(description="The argument's name.")
    before: Any = Field(default=None, description="Its value as proposed (None: not given).")
    after: Any = Field(default=None, description="Its value as edited (None: removed).")
    phi: bool = Field(default=False, description="The value is PHI (masked outside reveal).")


def args_diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    is_phi: Callable[[str], bool] = lambda _: False,
) -> list[ArgChange]:
    """The arguments that differ between ``before`` and ``after``, in name order."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, _ABSENT), after.get(name, _ABSENT)
        if old == new:
            continue
        changes.append(
            ArgChange(
                field=name,
                before=None if old is _ABSENT else old,
                after=None if new is _ABSENT else new,
                phi=is_phi(name),
            )
        )
    return changes
