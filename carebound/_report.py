"""The run report: the JSON contract of ``carebound run --json`` (other tools depend on it).

::

    {"run_id": "...", "status": "completed|paused|waiting|failed|budget_exhausted|cancelled",
     "pending": [{"approval_id", "tool", "reason", "risk", "required_role"}],
     "findings": {"missing_documents": [{"code", "display"}],
                  "mismatches": [{"field", "values", "risk", "action"}]},
     "effects": [{"tool", "key", "status"}]}

Agents write ``missing_documents`` and ``mismatches`` into their findings in these shapes;
``findings`` holds everything known when the command returns, whatever the run waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the engine (and LangGraph) stay unloaded for readers of stored reports
    from carebound.engine.results import RunView


class PendingItem(BaseModel):
    """A hold the run is parked on."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    tool: str
    reason: str
    risk: str
    required_role: str


class MissingDocument(BaseModel):
    """A document the referral still needs."""

    model_config = ConfigDict(frozen=True)

    code: str
    display: str = ""


class MismatchItem(BaseModel):
    """A field that disagrees between records, or fails a check on one record."""

    model_config = ConfigDict(frozen=True)

    field: str
    values: dict[str, Any]
    risk: Literal["low", "high"]
    action: Literal["auto_fixed", "held"]


class Findings(BaseModel):
    """What the run found, as known now."""

    model_config = ConfigDict(frozen=True)

    missing_documents: list[MissingDocument] = Field(default_factory=list)
    mismatches: list[MismatchItem] = Field(default_factory=list)


class EffectItem(BaseModel):
    """An effect from the run's ledger."""

    model_config = ConfigDict(frozen=True)

    tool: str
    key: str
    status: str


class RunReport(BaseModel):
    """One run, in the shape ``carebound run --json`` prints."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    status: str
    summary: str = ""
    pending: list[PendingItem] = Field(default_factory=list)
    findings: Findings = Field(default_factory=Findings)
    effects: list[EffectItem] = Field(default_factory=list)


def run_report(view: RunView) -> RunReport:
    """Build the report of a run from its view."""
    pending = []
    if view.pending is not None and view.pending.status == "pending":
        request = view.pending.request
        pending.append(
            PendingItem(
                approval_id=request.approval_id,
                tool=request.tool,
                reason=request.reason,
                risk=request.risk,
                required_role=view.pending.required_role,
            )
        )
    raw = view.findings
    findings = Findings(
        missing_documents=[
            MissingDocument.model_validate(m)
            for m in raw.get("missing_documents", [])
            if isinstance(m, dict)
        ],
        mismatches=[MismatchItem.model_validate(m) for m in raw.get("mismatches", [])],
    )
    return RunReport(
        run_id=view.run_id,
        status=view.status,
        summary=view.record.summary,
        pending=pending,
        findings=findings,
        effects=[EffectItem(tool=e.tool, key=e.key, status=e.status) for e in view.effects],
    )
