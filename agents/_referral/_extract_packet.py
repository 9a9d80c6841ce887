"""The decision packet of a referral drafted from a fax (EXT-1): the draft beside the fax."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carebound._agent import AgentContext, ProposedCall
from carebound.approvals import DecisionPacket, PacketCheck, PacketFact, SourceRef
from carebound.tools import FactValue
from carebound.tools.referral import drafted_values


def _rule(ctx: AgentContext, tool: str) -> tuple[str | None, str | None]:
    for rule in ctx.pack.rules:
        names = [rule.when.tool] if isinstance(rule.when.tool, str) else rule.when.tool or []
        if tool in names and rule.decision == "hold":
            return rule.id, rule.text
    return None, None


def fax_referral_packet(
    ctx: AgentContext, call: ProposedCall, facts: Mapping[str, FactValue]
) -> DecisionPacket:
    """Every drafted value (PHI: masked until revealed), sourced to the fax; what was dropped
    as not written in the fax; and the check that every value shown is in it."""
    doc_id = str(call.args.get("document_id"))
    source = SourceRef(resource=f"DocumentReference/{doc_id}", field="content.attachment")
    patient: dict[str, Any] = dict(call.args.get("patient") or {})
    order: dict[str, Any] = dict(call.args.get("service_request") or {})
    shown = [
        PacketFact(label=field, value=value, source=source, phi=True)
        for field, value in drafted_values(patient, order)
    ]
    if patient.get("gender"):
        shown.append(PacketFact(label="patient.gender", value=str(patient["gender"]),
                                source=source, phi=True))  # fmt: skip
    dropped = [str(d) for d in call.args.get("dropped") or []]
    if dropped:
        shown.append(
            PacketFact(label="Dropped (not in the fax)", value=", ".join(dropped), source=source)
        )
    rule_id, rule_text = _rule(ctx, call.tool)
    in_fax = bool(facts.get("all_values_in_fax"))
    check = PacketCheck(
        name="every drafted value is written in the fax",
        passed=in_fax,
        detail="each value was found in the fax's text"
        if in_fax
        else f"not in the fax: {facts.get('values_not_in_fax') or 'the fax is not readable'}",
        rule_id=rule_id,
        rule_text=rule_text,
    )
    return DecisionPacket(
        summary=f"Create the referral read from fax {doc_id}?",
        facts=shown,
        checks=[check],
        recommendation="none",
        recommendation_text="Compare the draft with the fax; correct it with an edit, or reject "
        "it to enter the referral by hand.",
        confidence=0.5,
        on_approve="a Patient and an active ServiceRequest (supported by the fax) are written "
        "to the EHR",
        on_reject="nothing is written; the run ends and a person enters the referral",
    )
