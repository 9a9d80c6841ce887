"""The reconciler: settles low-risk mismatches itself and hands the rest to a person.

Demographics (the case holds a referral Patient): the referral's Patient and Coverage are
compared with the EHR chart and with the payer's Coverage, field by field. Low-risk differences
(case, Pub 28 abbreviations, phone formatting, ZIP+4, nicknames, one-letter typos, member-id
punctuation) are written to the EHR at once, audited with before and after; high-risk ones (any
DOB difference, another member id or payer, sex, a lost hyphenated surname, an invalid NPI, a
family member who could be the patient) are proposed and held for an intake coordinator, or
reported when nothing the agent may write would settle them.

Back office (the case holds no Patient): every invoice the ERP has received is three-way
matched against its purchase order and goods receipts with the pack's tolerances
(``settings.reconciler.tolerances``); matched invoices are approved, the others held for
billing, and those billing does not approve are put on hold in the ERP with the reason.

Composing: ``plan_reconcile`` is the planner. It keeps its memory only under
``memory["reconcile"]`` and returns every other memory and findings key unchanged, so another
planner (referral intake) can call it for its demographic step with ``RECONCILER_TOOLS`` among
its tools (all named ``reconcile_*``) and ``reconcile_packet`` as the packet of those tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    FinishSpec,
    Plan,
    PlannerView,
)
from carebound.domain.three_way import MatchTolerances
from carebound.guardrails import PolicyPack, format_validation_error
from carebound.tools import ToolSpec
from carebound.tools.reconcile import RECONCILE_TOOLS

from . import _demographics as demographics
from . import _invoices as invoices
from ._coverage import payer_status
from ._memory import MEMORY_KEY, ReconcileMemory, Step
from ._packet import reconcile_packet

SETTINGS_KEY = "reconciler"
"""The reconciler's section of a policy pack's ``settings``."""

RECONCILER_TOOLS: dict[str, ToolSpec[Any]] = dict(RECONCILE_TOOLS)
"""The reconciler's tools by name (every name starts with ``reconcile_``)."""


class ReconcilerSettings(BaseModel):
    """``settings.reconciler`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerances: MatchTolerances = Field(
        default_factory=MatchTolerances,
        description="Price tolerances of the three-way match (price_pct percent OR price_abs).",
    )


def reconciler_settings(pack: PolicyPack) -> ReconcilerSettings:
    """The pack's reconciler settings (defaults where it has none).

    Raises:
        pydantic.ValidationError: the section is malformed.
    """
    return ReconcilerSettings.model_validate(pack.settings.get(SETTINGS_KEY) or {})


def _has_patient(case: Mapping[str, Any]) -> bool:
    return any(
        (entry.get("resource") or {}).get("resourceType") == "Patient"
        for entry in case.get("entry", []) or []
        if isinstance(entry, Mapping)
    )


def _step(ctx: AgentContext, view: PlannerView, memory: ReconcileMemory) -> Step:
    tolerances = reconciler_settings(ctx.pack).tolerances
    if memory.phase == "start":
        if _has_patient(ctx.case):
            return demographics.start(view, memory)
        return invoices.start(view, memory, tolerances)
    handlers = {
        "find": lambda: demographics.on_find(ctx, view, memory),
        "payer": lambda: demographics.on_payer(ctx, view, memory),
        "link": lambda: demographics.on_link(view, memory),
        "fix": lambda: demographics.on_fix(view, memory),
        "verify": lambda: demographics.on_verify(ctx, view, memory),
        "invoices": lambda: invoices.on_match(view, memory, tolerances),
        "approve": lambda: invoices.on_approve(view, memory),
        "hold": lambda: invoices.on_hold(view, memory),
    }
    return handlers[memory.phase]()


def _findings(view: PlannerView, memory: ReconcileMemory) -> dict[str, Any]:
    findings = dict(view.findings)
    if memory.invoices is not None or memory.phase in ("invoices", "approve", "hold"):
        findings.update(invoices.findings(memory))
        return findings
    found = memory.found or {}
    findings["mismatches"] = [i.model_dump(mode="json") for i in memory.identity + memory.items]
    findings[MEMORY_KEY] = {
        "referral_patient": found.get("referral_patient"),
        "ehr_patient": f"Patient/{found['patient_id']}" if found.get("patient_id") else None,
        "matched_by": found.get("method"),
        "verified": memory.verified,
        "payer": payer_status(memory.payer, memory.payer_asked),
    }
    return findings


def plan_reconcile(ctx: AgentContext, view: PlannerView) -> Plan:
    """The reconciler's planner (rules; see the module docstring for the flow).

    Memory lives under ``view.memory["reconcile"]`` only; findings keys it does not write
    (e.g. ``missing_documents``) and other memory keys are returned unchanged. Once done it
    answers every later turn with the same ``Plan(finish=...)``.
    """
    memory = ReconcileMemory.of(view)
    if memory.done is not None:
        return Plan(finish=memory.done)
    try:
        step = _step(ctx, view, memory)
    except ValidationError as exc:
        summary = f"policy pack settings.{SETTINGS_KEY} is invalid:\n{format_validation_error(exc)}"
        finish = FinishSpec(status="failed", summary=summary)
        step = Step(memory=memory.model_copy(update={"done": finish}), finish=finish)
    if not step.calls and step.finish is None:
        step = step.model_copy(update={"finish": FinishSpec(summary="nothing left to do")})
    return Plan(
        calls=step.calls,
        finish=step.finish,
        findings=_findings(view, step.memory),
        memory={**view.memory, MEMORY_KEY: step.memory.model_dump(mode="json")},
    )


def _patient_ref(case: Mapping[str, Any]) -> str | None:
    for entry in case.get("entry", []) or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            return f"Patient/{resource['id']}"
    return None


RECONCILER = AgentDefinition(
    name="reconciler",
    version="1",
    description="Fixes low-risk demographic mismatches between referral, EHR and payer (audited) "
    "and holds high-risk ones for a coordinator; three-way matches invoices, holding "
    "exceptions for billing.",
    tools=RECONCILER_TOOLS,
    planner=plan_reconcile,
    packet=reconcile_packet,
    category="demographics-reconciliation",
    patient_ref=_patient_ref,
)
