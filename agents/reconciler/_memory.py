"""The reconciler planner's memory (``PlannerView.memory["reconcile"]``) and its turn shape.

The planner proposes a batch of calls, then reads their results on its next turn. It records
where the batch started (``mark``, the number of results before it) so it can pair each proposal
with its result even when another planner (intake) composes it and adds results of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import CallResult, FinishSpec, PlannerView, ProposedCall
from carebound.tools.reconcile import RECONCILE_TOOLS, InvoiceIssue

from ._findings import FindingItem

MEMORY_KEY = "reconcile"
"""The only key of the planner's memory the reconciler writes."""

Phase = Literal["start", "find", "payer", "link", "fix", "verify", "invoices", "approve", "hold"]

InvoiceOutcome = Literal[
    "approving", "held", "approved", "approved_by_billing", "on_hold", "error", "hold_failed"
]


class PendingCall(BaseModel):
    """One call of the batch in flight and what it is for."""

    model_config = ConfigDict(frozen=True)

    tool: str
    args: dict[str, Any]
    ref: int | str | None = Field(
        default=None, description="Index of the finding item, or the invoice number."
    )


class InvoiceState(BaseModel):
    """One invoice's match and what became of it."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: str
    vendor: str
    po_number: str | None
    amount: str
    status: Literal["matched", "exceptions"]
    exceptions: list[InvoiceIssue] = Field(default_factory=list)
    outcome: InvoiceOutcome = "approving"
    note: str = ""


class ReconcileMemory(BaseModel):
    """Everything the reconciler remembers between turns (JSON)."""

    model_config = ConfigDict(extra="forbid")

    phase: Phase = "start"
    mark: int = 0
    batch: list[PendingCall] = Field(default_factory=list)
    found: dict[str, Any] | None = Field(
        default=None, description="The last reconcile_find_patient result."
    )
    payer: dict[str, Any] | None = Field(
        default=None, description="The reconcile_read_coverage result."
    )
    payer_asked: bool = False
    items: list[FindingItem] = Field(default_factory=list)
    identity: list[FindingItem] = Field(default_factory=list)
    verified: bool | None = None
    invoices: list[InvoiceState] | None = None
    done: FinishSpec | None = None
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, view: PlannerView) -> ReconcileMemory:
        """The reconciler's memory in ``view`` (fresh when there is none)."""
        return cls.model_validate(view.memory.get(MEMORY_KEY) or {})

    def propose(
        self, view: PlannerView, calls: list[tuple[ProposedCall, int | str | None]]
    ) -> ReconcileMemory:
        """Remember a new batch starting after the results seen so far."""
        batch = [PendingCall(tool=c.tool, args=dict(c.args), ref=ref) for c, ref in calls]
        return self.model_copy(update={"batch": batch, "mark": len(view.results)})

    def results(self, view: PlannerView) -> list[CallResult | None]:
        """The result of each call of the batch, in order (None where none arrived)."""
        mine = [r for r in view.results[self.mark :] if r.tool in RECONCILE_TOOLS]
        return [mine[n] if n < len(mine) else None for n in range(len(self.batch))]


class Step(BaseModel):
    """What one phase decided: the new memory, calls to propose, or the end."""

    model_config = ConfigDict(frozen=True)

    memory: ReconcileMemory
    calls: list[ProposedCall] = Field(default_factory=list)
    finish: FinishSpec | None = None


def refused(result: CallResult | None) -> str:
    """Why a call did not execute, in a few words."""
    if result is None:
        return "no result"
    if result.status == "rejected":
        # A reviewer's reason is their free text (it may quote PHI): refer to it, never copy it.
        return "rejected by the reviewer (their reason is in the decision record)"
    return f"{result.status}: {result.reason or 'no reason given'}"
