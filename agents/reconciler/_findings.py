"""Demographic findings: from three records (referral, EHR chart, payer) to one finding per
field and the writes that would settle them.

Pure: no I/O. Every difference is classified by ``compare_records`` / ``check_record``; this
module only groups the mismatches by field, decides which system a fix would write (the EHR
chart, or its Coverage's member id; never the referral, which is the sender's document) and with
which value (the rule's normalised value for a low-risk difference, the referral's value for a
high-risk one, which a person then decides), and keeps the run report's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound.domain.identity import (
    PAYER_SOURCE,
    Mismatch,
    PersonRecord,
    check_record,
    compare_records,
)
from carebound.tools.reconcile import PATIENT_FIELDS, field_value

from ._wording import describe

Outcome = Literal[
    "fixing",
    "fixed",
    "already_consistent",
    "held",
    "approved",
    "edited",
    "rejected",
    "expired",
    "denied",
    "error",
    "reported",
    "not_granted",
    "identity_unconfirmed",
]
"""Where a finding stands. ``fixing``/``held``: a write was proposed and has no result yet;
``already_consistent``: the EHR already holds the normalised value (only the referral's spelling
differs); ``reported``: nothing the agent may write settles it, a person follows up;
``not_granted``: a write would settle it but the agent's grant does not cover it."""

_AUTO = ("fixing", "fixed", "already_consistent")

FIX_DEMOGRAPHIC = "reconcile_fix_demographic"
FIX_MEMBER_ID = "reconcile_fix_member_id"

MayCall = Callable[[str, dict[str, Any]], bool]
"""Whether the agent's grant allows a call of a tool with these arguments."""


class FindingItem(BaseModel):
    """One mismatch as the run report lists it (``field``, ``values``, ``risk``, ``action``)
    plus what the reconciler did about it."""

    model_config = ConfigDict(extra="forbid")

    field: str
    values: dict[str, str | None]
    risk: Literal["low", "high"]
    action: Literal["auto_fixed", "held"] = "held"
    kind: str
    explanation: str
    proposed: str | None = Field(default=None, description="The value written or proposed.")
    outcome: Outcome = "reported"
    note: str = ""

    def settle(self, outcome: Outcome, note: str = "") -> FindingItem:
        """The item with a new outcome; the action follows (low risk and settled without a
        person is ``auto_fixed``, anything else is ``held``)."""
        auto = self.risk == "low" and outcome in _AUTO
        return self.model_copy(
            update={
                "outcome": outcome,
                "action": "auto_fixed" if auto else "held",
                "note": note or self.note,
            }
        )


class FixCall(BaseModel):
    """A write proposed to settle the finding ``item`` (an index into the item list)."""

    model_config = ConfigDict(frozen=True)

    item: int
    tool: str
    args: dict[str, Any]
    why: str
    risk: Literal["low", "high"]


class Analysis(BaseModel):
    """Findings and the writes proposed for them (low-risk writes first)."""

    model_config = ConfigDict(frozen=True)

    items: list[FindingItem]
    fixes: list[FixCall]
    collisions: list[FindingItem]
    """Family collisions: another chart at the address could be the patient."""


def _payer_fields(record: PersonRecord) -> PersonRecord:
    """What is compared with the payer: name, birth date, sex, member id and payer."""
    return PersonRecord(
        source=record.source,
        family=record.family,
        given=record.given,
        birth_date=record.birth_date,
        sex=record.sex,
        member_id=record.member_id,
        payer_id=record.payer_id,
    )


def _merge(field: str, mismatches: list[Mismatch]) -> FindingItem:
    values: dict[str, str | None] = {}
    for m in mismatches:
        values.update(m.values)
    high = [m for m in mismatches if m.risk == "high"]
    lead = high[0] if high else mismatches[0]
    explanations = list(dict.fromkeys(describe(m.field, m.kind, m.values) for m in mismatches))
    return FindingItem(
        field=field,
        values=values,
        risk="high" if high else "low",
        kind=lead.kind,
        explanation="; ".join(explanations)[:600],
    )


def analyse(
    *,
    referral: PersonRecord,
    ehr: PersonRecord,
    patient_id: str,
    coverage_id: str | None,
    household: list[PersonRecord] | None,
    payer: PersonRecord | None,
    payer_asked: bool,
    may: MayCall,
) -> Analysis:
    """Compare the records and decide, per field, what settles the difference.

    Args:
        referral: the referral's record (the case).
        ehr: the matched EHR chart (the record of reference).
        patient_id: the chart's id; coverage_id: its EHR Coverage, if any.
        household: other charts of the family name, or None when the chart was matched by an
            identifier (then no family member can be the patient instead).
        payer: the payer's record, if the payer knows the member; payer_asked: whether it was
            asked at all.
        may: the grant check, so nothing is proposed that the gate would deny.
    """
    groups: dict[str, list[Mismatch]] = {}
    collisions: list[FindingItem] = []
    found = [*compare_records(referral, ehr, household=household), *check_record(referral)]
    ehr_vs_payer: Mismatch | None = None
    if payer is not None:
        found += compare_records(_payer_fields(referral), payer)
        versus = compare_records(_payer_fields(ehr), payer)
        found += versus
        ehr_vs_payer = next((m for m in versus if m.field == "identifier.member_id"), None)
    for m in found:
        if m.kind == "family_collision":
            item = FindingItem(
                field=m.field,
                values=dict(m.values),
                risk=m.risk,
                kind=m.kind,
                explanation=describe(m.field, m.kind, m.values),
            )
            collisions.append(item.settle("held"))
        else:
            groups.setdefault(m.field, []).append(m)
    items: list[FindingItem] = []
    fixes: list[FixCall] = []
    for field, mismatches in groups.items():
        item = _merge(field, mismatches)
        direct = next((m for m in mismatches if set(m.values) == {"referral", "ehr"}), None)
        call: FixCall | None = None
        # The payer's record differing in a high-risk way is for a person even when the
        # referral and the chart differ only in spelling: nothing is written then.
        payer_high = any(m.risk == "high" and PAYER_SOURCE in m.values for m in mismatches)
        if (
            field in PATIENT_FIELDS
            and direct is not None
            and not (payer_high and direct.risk == "low")
        ):
            item, call = _patient_fix(
                item,
                direct=direct,
                referral=referral,
                ehr=ehr,
                patient_id=patient_id,
                index=len(items),
                may=may,
            )
        elif field == "identifier.member_id":
            item, call = _member_fix(
                item,
                ehr_vs_payer=ehr_vs_payer,
                ehr=ehr,
                payer=payer,
                coverage_id=coverage_id,
                index=len(items),
                may=may,
            )
        else:
            item = item.settle("already_consistent" if item.risk == "low" else "reported")
        items.append(item)
        if call is not None:
            fixes.append(call)
    if payer_asked and payer is None:
        items = _coverage_not_found(items, referral, ehr)
    fixes.sort(key=lambda f: f.risk != "low")
    return Analysis(items=items, fixes=fixes, collisions=collisions)


def _patient_fix(
    item: FindingItem,
    *,
    direct: Mismatch,
    referral: PersonRecord,
    ehr: PersonRecord,
    patient_id: str,
    index: int,
    may: MayCall,
) -> tuple[FindingItem, FixCall | None]:
    field = item.field
    value = direct.proposed if direct.risk == "low" else field_value(referral, field)
    current = field_value(ehr, field)
    if direct.risk == "low" and value == current:
        return item.model_copy(update={"proposed": value}).settle("already_consistent"), None
    if value is None:
        return item.settle("reported"), None
    args: dict[str, Any] = {"patient_id": patient_id, "field": field, "value": value}
    if current is not None:
        args["before"] = current  # bound to what was compared: a changed chart is held again
    item = item.model_copy(update={"proposed": value})
    if not may(FIX_DEMOGRAPHIC, args):
        return item.settle("not_granted", "the agent's grant does not cover this field"), None
    risk: Literal["low", "high"] = "low" if item.risk == "low" and direct.risk == "low" else "high"
    said = describe(direct.field, direct.kind, direct.values)
    why = (
        f"{field}: {said}"
        if risk == "low"
        else f"{field}: {said}; the referral's value is proposed"
    )
    call = FixCall(item=index, tool=FIX_DEMOGRAPHIC, args=args, why=why[:300], risk=risk)
    return item.settle("fixing" if risk == "low" else "held"), call


def _member_fix(
    item: FindingItem,
    *,
    ehr_vs_payer: Mismatch | None,
    ehr: PersonRecord,
    payer: PersonRecord | None,
    coverage_id: str | None,
    index: int,
    may: MayCall,
) -> tuple[FindingItem, FixCall | None]:
    if ehr_vs_payer is None or payer is None or coverage_id is None:
        return item.settle("already_consistent" if item.risk == "low" else "reported"), None
    value = ehr_vs_payer.proposed if ehr_vs_payer.risk == "low" else payer.member_id
    if value is None or value == ehr.member_id:
        return item.settle("already_consistent" if item.risk == "low" else "reported"), None
    args = {"coverage_id": coverage_id, "value": value}
    item = item.model_copy(update={"proposed": value})
    if not may(FIX_MEMBER_ID, args):
        return item.settle("not_granted", "the agent's grant does not cover Coverage writes"), None
    risk: Literal["low", "high"] = "low" if ehr_vs_payer.risk == "low" else "high"
    said = describe(ehr_vs_payer.field, ehr_vs_payer.kind, ehr_vs_payer.values)
    why = f"the payer knows the proposed member id: {said}"
    call = FixCall(item=index, tool=FIX_MEMBER_ID, args=args, why=why[:300], risk=risk)
    return item.settle("fixing" if risk == "low" else "held"), call


def _coverage_not_found(
    items: list[FindingItem], referral: PersonRecord, ehr: PersonRecord
) -> list[FindingItem]:
    explanation = "the payer has no coverage under the member id(s) on file"
    values = {"referral": referral.member_id, "ehr": ehr.member_id, "payer": None}
    for n, item in enumerate(items):
        if item.field == "identifier.member_id":
            merged = item.model_copy(
                update={
                    "values": {**item.values, **values},
                    "risk": "high",
                    "kind": "coverage_not_found",
                    "explanation": f"{item.explanation}; {explanation}",
                }
            )
            items[n] = merged.settle(item.outcome if item.outcome == "held" else "reported")
            return items
    item = FindingItem(
        field="identifier.member_id",
        values=values,
        risk="high",
        kind="coverage_not_found",
        explanation=explanation,
    )
    return [*items, item.settle("reported")]
