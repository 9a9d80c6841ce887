"""The reconciler's back-office phases: three-way match every received invoice, propose its
approval, and put on hold in the ERP whatever billing did not approve.

    invoices ─► approve (matched: allowed; exceptions: held for billing) ─► hold ─► done

A rejected (or expired, or denied) approval is not left silent: the invoice goes on hold in the
ERP with the reviewer's reason and the exception kinds, so accounts payable sees why it is not
paid and works it with the vendor.
"""

from __future__ import annotations

from carebound._agent import FinishSpec, PlannerView, ProposedCall
from carebound.domain.three_way import MatchTolerances
from carebound.tools.reconcile import InvoiceCheck

from ._memory import InvoiceState, ReconcileMemory, Step, refused

MATCH = "reconcile_match_invoices"
APPROVE = "reconcile_approve_invoice"
HOLD = "reconcile_hold_invoice"


def _tolerance_args(tolerances: MatchTolerances) -> dict[str, str]:
    return {"price_pct": str(tolerances.price_pct), "price_abs": str(tolerances.price_abs)}


def start(view: PlannerView, memory: ReconcileMemory, tolerances: MatchTolerances) -> Step:
    """First turn of a back-office run: match the waiting invoices."""
    call = ProposedCall(
        tool=MATCH, args=_tolerance_args(tolerances), why="three-way match waiting invoices"
    )
    memory = memory.propose(view, [(call, None)]).model_copy(update={"phase": "invoices"})
    return Step(memory=memory, calls=[call])


def on_match(view: PlannerView, memory: ReconcileMemory, tolerances: MatchTolerances) -> Step:
    """Invoices matched: propose approving each (the policy holds those with exceptions)."""
    result = memory.results(view)[0]
    if result is None or result.status != "executed":
        return finish(memory, f"cannot read the ERP ({refused(result)})", status="failed")
    checks = [InvoiceCheck.model_validate(c) for c in (result.result or {}).get("invoices", [])]
    states = [
        InvoiceState(
            invoice_number=c.invoice_number,
            vendor=c.vendor,
            po_number=c.po_number,
            amount=c.amount,
            status=c.status,
            exceptions=list(c.exceptions),
            outcome="approving" if c.status == "matched" else "held",
        )
        for c in checks
    ]
    memory = memory.model_copy(update={"invoices": states})
    if not states:
        return finish(memory, "no invoices are waiting for a match")
    calls: list[tuple[ProposedCall, int | str | None]] = []
    for state in states:
        why = (
            f"PO {state.po_number}, receipts and invoice agree within tolerance"
            if state.status == "matched"
            else "exceptions: " + ", ".join(sorted({e.kind for e in state.exceptions}))
        )
        args = {"invoice_number": state.invoice_number, **_tolerance_args(tolerances)}
        calls.append((ProposedCall(tool=APPROVE, args=args, why=why), state.invoice_number))
    memory = memory.propose(view, calls).model_copy(update={"phase": "approve"})
    return Step(memory=memory, calls=[c for c, _ in calls])


def _index(memory: ReconcileMemory) -> dict[str, int]:
    return {s.invoice_number: n for n, s in enumerate(memory.invoices or [])}


def on_approve(view: PlannerView, memory: ReconcileMemory) -> Step:
    """Approvals ran or were decided: hold in the ERP every invoice not approved."""
    states = list(memory.invoices or [])
    where = _index(memory)
    holds: list[tuple[ProposedCall, int | str | None]] = []
    for pending, result in zip(memory.batch, memory.results(view), strict=True):
        n = where[str(pending.ref)]
        state = states[n]
        if result is not None and result.status == "executed":
            done = "approved" if state.status == "matched" else "approved_by_billing"
            states[n] = state.model_copy(update={"outcome": done})
            continue
        if result is not None and result.status == "error":
            states[n] = state.model_copy(update={"outcome": "error", "note": refused(result)})
            continue
        kinds = ", ".join(sorted({e.kind for e in state.exceptions})) or "none"
        why = {
            "rejected": f"billing rejected payment: {result.reason}" if result else "",
            "expired": "no billing decision before the deadline",
        }.get(result.status if result else "", f"approval refused ({refused(result)})")
        reason = f"{why} (three-way match exceptions: {kinds})"[:500]
        states[n] = state.model_copy(update={"note": why})
        call = ProposedCall(
            tool=HOLD,
            args={"invoice_number": state.invoice_number, "reason": reason},
            why="not approved for payment: hold it in the ERP for accounts payable",
        )
        holds.append((call, state.invoice_number))
    memory = memory.model_copy(update={"invoices": states})
    if not holds:
        return finish(memory, "")
    memory = memory.propose(view, holds).model_copy(update={"phase": "hold"})
    return Step(memory=memory, calls=[c for c, _ in holds])


def on_hold(view: PlannerView, memory: ReconcileMemory) -> Step:
    """Holds placed: done."""
    states = list(memory.invoices or [])
    where = _index(memory)
    for pending, result in zip(memory.batch, memory.results(view), strict=True):
        n = where[str(pending.ref)]
        held = result is not None and result.status == "executed"
        note = states[n].note if held else f"{states[n].note}; hold failed ({refused(result)})"
        states[n] = states[n].model_copy(
            update={"outcome": "on_hold" if held else "hold_failed", "note": note}
        )
    return finish(memory.model_copy(update={"invoices": states}), "")


def finish(memory: ReconcileMemory, reason: str, *, status: str = "completed") -> Step:
    """End the run with a summary of every invoice."""
    finish_spec = FinishSpec(
        status="failed" if status == "failed" else "completed",
        summary=summary(memory, reason),
    )
    memory = memory.model_copy(update={"done": finish_spec, "batch": []})
    return Step(memory=memory, finish=finish_spec)


def summary(memory: ReconcileMemory, reason: str = "") -> str:
    """One line: each invoice and what became of it."""
    parts = []
    for state in memory.invoices or []:
        kinds = ", ".join(sorted({e.kind for e in state.exceptions}))
        text = f"{state.invoice_number} {state.outcome.replace('_', ' ')}"
        parts.append(f"{text} ({kinds})" if kinds else text)
    if reason:
        parts.append(reason)
    return "; ".join(parts)


def findings(memory: ReconcileMemory) -> dict[str, object]:
    """``invoices`` (one per invoice) and ``invoice_exceptions`` (flat) for the run's findings."""
    states = memory.invoices or []
    return {
        "invoices": [s.model_dump(mode="json") for s in states],
        "invoice_exceptions": [
            {"invoice_number": s.invoice_number, **e.model_dump(mode="json")}
            for s in states
            for e in s.exceptions
        ],
    }
