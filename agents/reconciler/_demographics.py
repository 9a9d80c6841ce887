"""The reconciler's demographic phases: find the chart, ask the payer, settle who the patient
is, propose the fixes, verify them.

    find ─► payer ─► (family collision? link ─► find) ─► fix ─► verify ─► done

Low-risk fixes are proposed first (the policy allows them), then high-risk ones (the policy
holds each for an intake coordinator: approving applies it). Nothing is written to a chart
while another family member could be the patient: that is decided first, by a person.
"""

from __future__ import annotations

from typing import Any

from carebound._agent import AgentContext, CallResult, FinishSpec, PlannerView, ProposedCall
from carebound.domain.identity import PersonRecord
from carebound.guardrails import check_permission
from carebound.tools.reconcile import RECONCILE_TOOLS

from ._coverage import NOT_VERIFIED, coverage_items
from ._findings import Analysis, FindingItem, MayCall, Outcome, analyse
from ._memory import ReconcileMemory, Step, refused

FIND = "reconcile_find_patient"
READ_COVERAGE = "reconcile_read_coverage"
LINK = "reconcile_link_patient"

_DECIDED: dict[str, Outcome] = {
    "rejected": "rejected",
    "expired": "expired",
    "denied": "denied",
    "error": "error",
}


def may_call(ctx: AgentContext) -> MayCall:
    """The gate's own grant check for this run's agent, to avoid proposing what it denies."""
    grant = ctx.pack.agent_policy(ctx.agent).grant

    def may(tool: str, args: dict[str, Any]) -> bool:
        spec = RECONCILE_TOOLS[tool]
        try:
            validated = spec.validate(args)
        except ValueError:
            return False
        return check_permission(grant, spec, validated).allowed

    return may


def start(view: PlannerView, memory: ReconcileMemory) -> Step:
    """First turn: read the chart."""
    call = ProposedCall(tool=FIND, why="find the referral's patient in the EHR and compare")
    return Step(memory=memory.propose(view, [(call, None)]).model_copy(update={"phase": "find"}),
                calls=[call])  # fmt: skip


def _person(record: PersonRecord) -> str:
    name = " ".join([*record.given, record.family or ""]).strip() or "(no name)"
    return f"{name}, {record.birth_date.isoformat() if record.birth_date else 'DOB unknown'}"


def _records(
    found: dict[str, Any], *, confirmed: bool = False
) -> tuple[PersonRecord, PersonRecord, list[PersonRecord] | None]:
    """Referral, chart and household records; no household once identity is confirmed (by an
    identifier, or by a person's decision)."""
    referral = PersonRecord.model_validate(found["referral"])
    ehr = PersonRecord.model_validate(found["record"])
    household = None
    if not confirmed and found.get("method") != "identifier":
        household = [PersonRecord.model_validate(r) for r in found.get("household", [])]
    return referral, ehr, household


def _analysis(ctx: AgentContext, memory: ReconcileMemory) -> Analysis:
    found = memory.found or {}
    confirmed = any(i.outcome in ("approved", "edited") for i in memory.identity)
    referral, ehr, household = _records(found, confirmed=confirmed)
    payer_record = None
    if memory.payer and memory.payer.get("record"):
        payer_record = PersonRecord.model_validate(memory.payer["record"])
    return analyse(
        referral=referral,
        ehr=ehr,
        patient_id=str(found["patient_id"]),
        coverage_id=found.get("coverage_id"),
        household=household,
        payer=payer_record,
        payer_asked=memory.payer_asked,
        may=may_call(ctx),
    )


def on_find(ctx: AgentContext, view: PlannerView, memory: ReconcileMemory) -> Step:
    """The chart was read: ask the payer (once), or go on to the comparison."""
    result = memory.results(view)[0]
    if result is None or result.status != "executed":
        return _finish(memory, f"cannot read the EHR ({refused(result)})", status="failed")
    found = dict(result.result or {})
    if not found.get("patient_id"):
        referral = PersonRecord.model_validate(found["referral"])
        unmatched = FindingItem(
            field="identity",
            values={"referral": _person(referral), "ehr": None},
            risk="high",
            kind="no_match",
            explanation="no EHR chart matches the referral's identifiers, name and birth date",
        ).settle("reported")
        return _finish(
            memory.model_copy(update={"found": found, "identity": [unmatched]}),
            "no EHR chart matches the referral's patient; a person must match or register it",
        )
    memory = memory.model_copy(update={"found": found})
    if not memory.payer_asked:
        referral, ehr, _ = _records(found)
        member_ids = list(dict.fromkeys(i for i in (referral.member_id, ehr.member_id) if i))
        args = {"member_ids": member_ids}
        if member_ids and may_call(ctx)(READ_COVERAGE, args):
            call = ProposedCall(tool=READ_COVERAGE, args=args, why="check the member id")
            memory = memory.propose(view, [(call, None)]).model_copy(update={"phase": "payer"})
            return Step(memory=memory, calls=[call])
    return _compare(ctx, view, memory)


def on_payer(ctx: AgentContext, view: PlannerView, memory: ReconcileMemory) -> Step:
    """The payer answered (or could not be asked)."""
    result = memory.results(view)[0]
    if result is not None and result.status == "executed":
        answer = dict(result.result or {})
        connected = answer.get("connected") is not False
        notes = memory.notes if connected else [*memory.notes, NOT_VERIFIED + " (none connected)"]
        memory = memory.model_copy(
            update={"payer": answer, "payer_asked": connected, "notes": notes}
        )
    else:
        note = f"the payer was not asked ({refused(result)})"
        memory = memory.model_copy(update={"notes": [*memory.notes, note]})
    return _compare(ctx, view, memory)


def _compare(ctx: AgentContext, view: PlannerView, memory: ReconcileMemory) -> Step:
    analysis = _analysis(ctx, memory)
    found = memory.found or {}
    if analysis.collisions:
        waiting = [i.settle("identity_unconfirmed", "who the patient is is decided first")
                   for i in analysis.items]  # fmt: skip
        args = {"patient_id": found["patient_id"]}
        if found.get("has_identifiers") and may_call(ctx)(LINK, args):
            call = ProposedCall(
                tool=LINK,
                args=args,
                why="another chart of the family at this address could be the patient",
            )
            memory = memory.model_copy(
                update={"identity": analysis.collisions, "items": waiting, "phase": "link"}
            )
            return Step(memory=memory.propose(view, [(call, None)]), calls=[call])
        reported = [i.settle("reported") for i in analysis.collisions]
        memory = memory.model_copy(update={"identity": reported, "items": waiting})
        return _finish(memory, "who the patient is cannot be settled by the agent")
    items = [*analysis.items, *coverage_items(found, memory.payer)]
    memory = memory.model_copy(update={"items": items})
    if not analysis.fixes:
        return _finish(memory, "")
    calls = [ProposedCall(tool=f.tool, args=f.args, why=f.why) for f in analysis.fixes]
    refs: list[int | str | None] = [f.item for f in analysis.fixes]
    memory = memory.propose(view, list(zip(calls, refs, strict=True)))
    return Step(memory=memory.model_copy(update={"phase": "fix"}), calls=calls)


def on_link(view: PlannerView, memory: ReconcileMemory) -> Step:
    """A person decided who the patient is: read the linked chart again, or stop."""
    result = memory.results(view)[0]
    if result is not None and result.status == "executed":
        edited = result.args != memory.batch[0].args
        outcome: Outcome = "edited" if edited else "approved"
        identity = [i.settle(outcome, f"linked to {result.args.get('patient_id')}")
                    for i in memory.identity]  # fmt: skip
        call = ProposedCall(tool=FIND, why="read the chart the referral is now linked to")
        memory = memory.model_copy(
            update={"identity": identity, "phase": "find", "payer_asked": False, "payer": None}
        )
        return Step(memory=memory.propose(view, [(call, None)]), calls=[call])
    outcome = _DECIDED.get(result.status if result else "error", "error")
    identity = [i.settle(outcome, refused(result)) for i in memory.identity]
    memory = memory.model_copy(update={"identity": identity})
    return _finish(memory, "the referral was not linked to a chart; nothing was changed")


def _fix_outcome(
    item: FindingItem, pending_args: dict[str, Any], result: CallResult | None
) -> FindingItem:
    if result is None or result.status != "executed":
        status = result.status if result else "error"
        return item.settle(_DECIDED.get(status, "error"), refused(result))
    value = result.args.get("value")
    item = item.model_copy(update={"proposed": value})
    if item.outcome == "fixing":
        return item.settle("fixed")
    return item.settle("edited" if result.args != pending_args else "approved")


def on_fix(view: PlannerView, memory: ReconcileMemory) -> Step:
    """The fixes ran (or were held and decided): record each, then verify the chart."""
    items = list(memory.items)
    for pending, result in zip(memory.batch, memory.results(view), strict=True):
        if isinstance(pending.ref, int):
            items[pending.ref] = _fix_outcome(items[pending.ref], pending.args, result)
    memory = memory.model_copy(update={"items": items})
    if not any(i.outcome in ("fixed", "approved") for i in items):
        return _finish(memory, "")
    call = ProposedCall(tool=FIND, why="re-read the chart to verify the fixes")
    memory = memory.propose(view, [(call, None)]).model_copy(update={"phase": "verify"})
    return Step(memory=memory, calls=[call])


def on_verify(ctx: AgentContext, view: PlannerView, memory: ReconcileMemory) -> Step:
    """Re-compare after the fixes: every fixed or approved field must now need no write."""
    result = memory.results(view)[0]
    if result is None or result.status != "executed" or not (result.result or {}).get("record"):
        note = f"the fixes could not be verified ({refused(result)})"
        return _finish(memory.model_copy(update={"notes": [*memory.notes, note]}), "")
    fresh = memory.model_copy(update={"found": dict(result.result)})
    again = _analysis(ctx, fresh)
    open_fields = {str(f.args.get("field", "identifier.member_id")) for f in again.fixes}
    settled = [i.field for i in memory.items if i.outcome in ("fixed", "approved")]
    unverified = [f for f in settled if f in open_fields]
    notes = memory.notes + ([f"not verified: {', '.join(unverified)}"] if unverified else [])
    return _finish(memory.model_copy(update={"verified": not unverified, "notes": notes}), "")


def _finish(memory: ReconcileMemory, reason: str, *, status: str = "completed") -> Step:
    finish = FinishSpec(
        status="failed" if status == "failed" else "completed",
        summary=summary(memory, reason),
    )
    return Step(memory=memory.model_copy(update={"done": finish, "batch": []}), finish=finish)


def summary(memory: ReconcileMemory, reason: str = "") -> str:
    """One line for the run: the chart, what was fixed, what a person holds."""
    found = memory.found or {}
    parts: list[str] = []
    if found.get("patient_id"):
        parts.append(f"Patient/{found['patient_id']} (matched by {found.get('method')})")
    items = memory.identity + memory.items
    fixed = sum(1 for i in items if i.outcome == "fixed")
    consistent = sum(1 for i in items if i.outcome == "already_consistent")
    held = [f"{i.field} {i.outcome}" for i in items if i.action == "held"]
    if fixed:
        parts.append(f"{fixed} low-risk fixed automatically")
    if consistent:
        parts.append(f"{consistent} already consistent in the EHR")
    if held:
        parts.append("held for a person: " + ", ".join(held))
    if not items and found.get("patient_id"):
        parts.append("records agree")
    if memory.verified is not None:
        parts.append("verified" if memory.verified else "NOT verified")
    parts.extend(memory.notes)
    if reason:
        parts.append(reason)
    return "; ".join(parts)
