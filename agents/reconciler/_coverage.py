"""The reconciler's coverage and payer findings: what the payer answered (or that nobody could
be asked), and any Coverage that is not in force on the date of service.

Pure: reads the results of ``reconcile_find_patient`` (the referral's Coverage verdicts) and
``reconcile_read_coverage`` (the payer's answer), as the planner's memory keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ._findings import FindingItem

PayerStatus = Literal["not_connected", "not_asked", "no_member", "confirmed"]
"""What is known from the payer: no payer is connected; a payer is, but was not asked (no member
id on file, or the call was refused); it answered and has no such member; it answered with the
member's Coverage."""

NOT_VERIFIED = "coverage not verified with the payer"
"""The words used wherever the payer could not be asked (summary, packet check)."""


def payer_status(payer: Mapping[str, Any] | None, asked: bool) -> PayerStatus:
    """The payer fact of a run, from the ``reconcile_read_coverage`` result it kept."""
    if payer is not None and payer.get("connected") is False:
        return "not_connected"
    if not asked or payer is None:
        return "not_asked"
    return "confirmed" if payer.get("found") else "no_member"


def coverage_items(
    found: Mapping[str, Any] | None, payer: Mapping[str, Any] | None
) -> list[FindingItem]:
    """One high-risk ``coverage`` finding when neither of the referral's Coverages is in force
    on the date of service, or the payer's Coverage is not; reported for a person, who gets
    current insurance from the patient or the referring office (nothing the agent may write
    settles it)."""
    values: dict[str, str | None] = {}
    reasons: list[str] = []
    verdicts = [v for v in (found or {}).get("coverage", []) or [] if isinstance(v, Mapping)]
    if verdicts and not any(v.get("in_force") for v in verdicts):
        values["referral"] = ", ".join(p for v in verdicts for p in v.get("problems", []))
        reasons.extend(str(v.get("explanation", "")) for v in verdicts)
    payer_verdict = (payer or {}).get("in_force")
    if isinstance(payer_verdict, Mapping) and not payer_verdict.get("in_force"):
        values["payer"] = ", ".join(payer_verdict.get("problems", []))
        reasons.append(str(payer_verdict.get("explanation", "")))
    if not values:
        return []
    item = FindingItem(
        field="coverage",
        values=values,
        risk="high",
        kind="coverage_not_in_force",
        explanation="; ".join(r for r in reasons if r)[:600],
    )
    return [item.settle("reported", "current insurance must be obtained by a person")]
