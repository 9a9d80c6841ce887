"""The one minimum-necessary PHI policy every channel applies (CLI, web pages, JSON API).

What is PHI is decided where the data is made, and masked here, the same way everywhere:

- a packet fact marked ``phi`` (a name, a birth date, a value being changed);
- an argument of a tool that declares PHI classes, unless the tool lists it as ``public``
  (codes, statuses, field names, references); every argument of a tool this install does not
  know;
- a mismatch's values and proposed value (the findings of ``run``, ``status`` and the API);
- what a PHI tool returned, and the values an audit event records for it (``before``/``after``
  of a fix, an edit's arguments).

Everything else is shown: statuses, field names, codes, tool names, roles, rule ids, resource
references, and the free text agents write, which by contract names facts and never quotes
their values (the PHI canary test holds every shipped agent to it). A masked value reads
:data:`MASK`; revealing it is a separate, audited step (``Runner.reveal``, ``view_phi`` events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from carebound._format import MASK
from carebound._phi_table import (
    EFFECT_REF,
    PHI_DETAIL_KEYS,
    ToolPhi,
    parse_table,
    resolve_effect_refs,
)
from carebound._report import MismatchItem, RunReport
from carebound.approvals import ApprovalView, Edit
from carebound.audit import AuditEvent

if TYPE_CHECKING:
    from carebound._agent import CallResult
    from carebound.engine.runner import Runner


REVIEWER_TEXT_KEYS = frozenset({"reason", "note"})
"""A reviewer's free text on a decision: people may quote PHI in it, so on holds of PHI tools it
is masked like PHI (agents never copy it into their own text)."""


def mask_value(value: Any) -> Any:
    """``value`` with every leaf replaced by :data:`MASK`; mapping keys (field names) and
    empty values (None, "") are kept, so a reader still sees what changed, not to what."""
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    if value is None or value == "":
        return value
    return MASK


class PhiPolicy:
    """Masks the PHI of one agent's runs; built from the agent's tool specs, or from the
    table a run pinned at start (:mod:`carebound._phi_table`, :meth:`from_table_json`),
    which lets a reader mask without loading the agents."""

    def __init__(self, tools: Mapping[str, ToolPhi] | None) -> None:
        """``tools``: the agent's tools by name; None when the agent is unknown here (then
        every tool is assumed to touch PHI)."""
        self._tools = tools

    @classmethod
    def from_table_json(cls, raw: str | bytes) -> PhiPolicy:
        """The policy of a run's pinned table (:func:`carebound._phi_table.table_json`)."""
        return cls(parse_table(raw))

    @classmethod
    def for_agent(cls, runner: Runner, agent: str) -> PhiPolicy:
        """The policy of ``agent`` as ``runner`` knows it."""
        from carebound._errors import NotFoundError

        try:
            return cls(runner.agent(agent).tools)
        except NotFoundError:
            return cls(None)

    @classmethod
    def for_run(cls, runner: Runner, run_id: str) -> PhiPolicy:
        """The policy of the agent of run ``run_id`` (mask everything if the run is unknown)."""
        record = runner.runs.get(run_id)
        return cls(None) if record is None else cls.for_agent(runner, record.agent)

    def tool_touches_phi(self, tool: str) -> bool:
        """Whether a call of ``tool`` may carry PHI (unknown tools are assumed to)."""
        spec = self._tools.get(tool) if self._tools is not None else None
        return spec is None or bool(spec.phi)

    def arg_is_phi(self, tool: str, name: str) -> bool:
        """Whether argument ``name`` of ``tool`` is masked."""
        spec = self._tools.get(tool) if self._tools is not None else None
        if spec is None:
            return True
        return bool(spec.phi) and name not in spec.public_args

    def args(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """A call's arguments with the PHI ones masked."""
        return {k: mask_value(v) if self.arg_is_phi(tool, k) else v for k, v in args.items()}

    def approval(self, view: ApprovalView) -> ApprovalView:
        """The hold as shown before a reveal: PHI facts, PHI arguments (proposed and edited)
        masked."""
        request = view.request
        facts = [f.model_copy(update={"value": MASK}) if f.phi else f for f in request.packet.facts]
        packet = request.packet.model_copy(update={"facts": facts})
        masked_request = request.model_copy(
            update={
                "packet": packet,
                "args": self.args(request.tool, request.args),
                # the proposal a first reviewer's edit of a two-person hold replaced
                "original_args": None
                if request.original_args is None
                else self.args(request.tool, request.original_args),
            }
        )
        masked = view.model_copy(update={"request": masked_request})
        record = view.record
        if record is None or record.decision is None:
            return masked
        changes = [
            c.model_copy(update={"before": mask_value(c.before), "after": mask_value(c.after)})
            if c.phi or self.arg_is_phi(request.tool, c.field)
            else c
            for c in record.changes
        ]
        masked = masked.model_copy(
            update={"record": record.model_copy(update={"changes": changes})}
        )
        record = masked.record
        assert record is not None and record.decision is not None
        update: dict[str, Any] = {}
        if isinstance(record.decision, Edit):
            update["args"] = self.args(request.tool, record.decision.args)
        if self.tool_touches_phi(request.tool):
            for key in REVIEWER_TEXT_KEYS:
                if getattr(record.decision, key, None):
                    update[key] = MASK
        decision = record.decision.model_copy(update=update)
        return masked.model_copy(
            update={"record": record.model_copy(update={"decision": decision})}
        )

    def call(self, result: CallResult) -> CallResult:
        """A call the run made, with PHI arguments, a PHI tool's result and a reviewer's reason
        for rejecting it masked."""
        update: dict[str, Any] = {"args": self.args(result.tool, result.args)}
        if self.tool_touches_phi(result.tool):
            update["result"] = mask_value(result.result)
            if result.status == "rejected" and result.reason:
                update["reason"] = MASK  # the reviewer's own words
        return result.model_copy(update=update)

    def event(self, event: AuditEvent, tool: str | None = None) -> AuditEvent:
        """An audit event with the data values it recorded for a PHI tool masked, and on a
        decision or a cancellation the person's free text. ``tool``: the held tool a decision
        event is about, when its detail does not name it (see :meth:`events`)."""
        named = event.detail.get("tool")
        tool = named if isinstance(named, str) else tool
        if tool is not None and not self.tool_touches_phi(tool):
            return event
        by_person = event.action == "decision" or event.detail.get("status") == "cancelled"
        hidden = PHI_DETAIL_KEYS | (REVIEWER_TEXT_KEYS if by_person else set())
        detail = {k: mask_value(v) if k in hidden else v for k, v in event.detail.items()}
        return event.model_copy(update={"detail": detail})

    def events(self, events: Iterable[AuditEvent]) -> list[AuditEvent]:
        """A run's audit trail, masked event by event; a decision event is judged by the tool
        of the hold it decides (named by the run's ``hold`` event of the same approval)."""
        listed = list(events)
        held: dict[str, str] = {}
        for e in listed:
            approval, tool = e.detail.get("approval_id"), e.detail.get("tool")
            if isinstance(approval, str) and isinstance(tool, str):
                held.setdefault(approval, tool)
        return [self.event(e, held.get(str(e.detail.get("approval_id")))) for e in listed]


def revealed_events(runner: Runner, run_id: str, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """A run's audit events as an entitled viewer sees them (after the reveal is recorded):
    the values an effect event names in the effect ledger (``ref:effect/...``, see
    :func:`~carebound._phi_table.effect_detail_refs`) read from it, while the run is kept."""
    listed = list(events)
    if not any(_names_effect_value(e) for e in listed):
        return listed
    results = {entry.key: entry.result for entry in runner.ledger.entries(run_id)}
    return [
        e.model_copy(update={"detail": resolve_effect_refs(e.detail, results)})
        if _names_effect_value(e)
        else e
        for e in listed
    ]


def _names_effect_value(event: AuditEvent) -> bool:
    return any(isinstance(v, str) and v.startswith(EFFECT_REF) for v in event.detail.values())


def hold_roles(runner: Runner, run_id: str) -> set[str]:
    """The required roles of every hold run ``run_id`` has had (its audit trail's ``hold``
    events and its pending hold): whoever holds one of them may reveal the run's PHI."""
    ids = [
        str(e.detail["approval_id"])
        for e in runner.audit(run_id)
        if e.action == "hold" and e.detail.get("approval_id")
    ]
    record = runner.runs.get(run_id)
    if record is not None and record.pending_approval:
        ids.append(record.pending_approval)
    views = (runner.approvals.get(i) for i in dict.fromkeys(ids))
    return {v.required_role for v in views if v is not None}


def mask_mismatch(item: MismatchItem) -> MismatchItem:
    """A mismatch with its values masked: which sources disagree on which field stays."""
    return item.model_copy(update={"values": mask_value(item.values)})


def mask_report(report: RunReport) -> RunReport:
    """The run report (``carebound run --json``) with mismatch values masked."""
    findings = report.findings.model_copy(
        update={"mismatches": [mask_mismatch(m) for m in report.findings.mismatches]}
    )
    return report.model_copy(update={"findings": findings})


def mask_findings(findings: Mapping[str, Any]) -> dict[str, Any]:
    """A run's raw findings with every mismatch's values and proposed value masked."""
    out = dict(findings)
    mismatches = out.get("mismatches")
    if isinstance(mismatches, list):
        out["mismatches"] = [
            {k: mask_value(v) if k in PHI_DETAIL_KEYS else v for k, v in m.items()}
            if isinstance(m, Mapping)
            else mask_value(m)
            for m in mismatches
        ]
    return out
