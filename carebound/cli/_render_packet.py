"""Rich renderers for reviewer holds: the inbox, the decision packet, a decision's result and
the reviewer directory.

They take carebound's models and return rich renderables; they know nothing of Typer or of
the store, so a web inbox can reuse them. Values from runs and documents are wrapped in
:class:`rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from carebound._format import MASK, due, short_hash
from carebound.approvals import ApprovalView, SourceRef
from carebound.cli._render_style import _blocks, _due, _pairs, _risk, _section, _status, _table

if TYPE_CHECKING:  # the engine (and LangGraph) stay unloaded for read-only commands
    from carebound.engine.results import RunView
    from carebound.guardrails import PolicyPack
    from carebound.state.parked import ParkedRun


def inbox_table(views: Sequence[ApprovalView], now: datetime) -> RenderableType:
    """Paused steps, most urgent first."""
    if not views:
        return Text("inbox empty: no paused steps", style="dim")
    rows = [
        (
            [
                Text(v.request.approval_id),
                _due(v.deadline, now),
                _risk(v.request.risk),
                Text(v.required_role),
                Text(v.request.agent),
            ],
            Text(v.request.packet.summary, style="dim"),
        )
        for v in views
    ]
    return _blocks(("approval", "due", "risk", "role", "agent"), rows)


def parked_table(parked: Sequence[ParkedRun], now: datetime) -> RenderableType:
    """Runs waiting for a system that is down: the system, when they retry, and why."""
    rows = []
    for item in parked:
        until = item.record.wait_until
        retry = Text(f"{until:%Y-%m-%d %H:%M} UTC ({due(until, now)})") if until else Text("-")
        fields = [Text(item.record.run_id), Text(item.system, style="bold red"), retry,
                  Text(item.record.agent)]  # fmt: skip
        rows.append((fields, Text(item.record.wait_reason or "", style="dim")))
    return _blocks(
        ("run", "system down", "retry at", "agent"),
        rows,
        title="\nruns waiting for a system (they retry on their own; a person takes over "
        "after the pack's limit)",
    )


def _source(ref: SourceRef) -> str:
    return " · ".join(p for p in (ref.resource, ref.field, ref.document) if p)


def packet_view(view: ApprovalView, now: datetime, *, masked: bool) -> RenderableType:
    """The decision packet of a hold, for a person deciding it.

    ``masked`` says the view's PHI was replaced by :data:`~carebound._format.MASK`
    (see :func:`~carebound._format.mask_approval`); the footer then says how to reveal it.
    """
    request = view.request
    parts: list[RenderableType] = [
        _packet_header(view, now),
        *_packet_call(view),
        *_packet_body(view),
    ]
    footer: list[str] = []
    if masked:
        footer.append(
            f"PHI is masked ({MASK}). To see it: carebound show {request.approval_id} --reveal "
            "--reviewer YOU (recorded in the audit trail)"
        )
    if view.status == "pending":
        footer.append(
            f"decide: carebound approve|reject|edit|escalate {request.approval_id} "
            f"--reviewer YOU --role {view.required_role}"
        )
    if footer:
        parts.append(Text("\n" + "\n".join(footer), style="dim"))
    return Panel(
        Group(*parts),
        title=Text(f"approval {request.approval_id}", style="bold"),
        title_align="left",
        box=box.ROUNDED,
    )


def _packet_header(view: ApprovalView, now: datetime) -> RenderableType:
    request = view.request
    pinned = request.pinned
    timeout = "reject"
    if request.on_timeout == "escalate" and request.escalate_to:
        timeout = f"escalate to {request.escalate_to}"
    held = f"{request.rule_id}: {request.rule_text}" if request.rule_id else request.rule_text
    deadline = Text.assemble(_due(view.deadline, now), f"  ({view.deadline:%Y-%m-%d %H:%M} UTC)")
    if view.status != "pending":  # decided or withdrawn: no countdown to a deadline
        deadline = Text(f"{view.deadline:%Y-%m-%d %H:%M} UTC, no longer waited for ({view.status})")
    rows: list[tuple[str, RenderableType | str]] = [
        ("decide", Text(request.packet.summary, style="bold")),
        ("status", _status(view.status)),
        ("held by", held),
        ("reason", request.reason),
        ("risk", _risk(request.risk)),
        ("role", view.required_role + ("  (two reviewers)" if request.two_person else "")),
        ("due", deadline),
        ("on timeout", timeout),
        (
            "run",
            f"{request.run_id} · agent {pinned.agent} v{pinned.agent_version} · "
            f"requested by {request.requester}",
        ),
        ("patient", request.patient_ref or "-"),
        ("policy", f"{pinned.policy}@{pinned.policy_version} ({pinned.policy_fingerprint})"),
    ]
    if view.approvers:
        rows.append(("approved by", ", ".join(view.approvers)))
    if view.record is not None and view.status != "pending":
        rec = view.record
        when = f"{rec.decided_at:%Y-%m-%d %H:%M:%S} UTC"
        rows.append(("decided", f"{rec.status} by {rec.decided_by} at {when}"))
    return _pairs(rows)


def _packet_call(view: ApprovalView) -> list[RenderableType]:
    request = view.request
    proposed = request.original_args  # set once a reviewer's edit of a two-person hold replaced it
    kind = "Proposed" if proposed is None else "Edited"
    title = f"{kind} call: {request.tool}  (args {short_hash(request.args_hash)})"
    if proposed is not None and view.status == "pending":
        title += "  (edited by a reviewer, awaiting a second approval)"
    if not request.args:
        return [_section(title), Text("  (no arguments)", style="dim")]
    args = _table("argument", "value", *(() if proposed is None else ("agent proposed",)))
    for key, value in request.args.items():
        cells = [Text(key), _arg_text(value)]
        if proposed is not None:
            before = proposed.get(key)
            cells.append(_arg_text(before) if before != value else Text("(same)", style="dim"))
        args.add_row(*cells)
    parts: list[RenderableType] = [_section(title), args]
    changes = view.record.changes if view.record is not None else []
    if changes:
        parts.append(_section("Changed by the decision (before -> after)"))
        for change in changes:
            before, after = _arg_text(change.before).plain, _arg_text(change.after).plain
            parts.append(Text(f"  {change.field}: {before} -> {after}"))
    return parts


def _arg_text(value: Any) -> Text:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return Text(shown, style="dim" if shown == MASK else "")


def _packet_body(view: ApprovalView) -> list[RenderableType]:
    packet = view.request.packet
    parts: list[RenderableType] = []
    summary = packet.model_summary
    if summary is not None:
        dropped = f"; {summary.dropped} unsupported sentence(s) dropped" * bool(summary.dropped)
        parts.append(_section("Summary (model-written)"))
        parts.append(
            Text(
                f"  by {summary.model} from the facts without PHI; each sentence cites its "
                f"facts{dropped}. The facts are the record.",
                style="dim",
            )
        )
        parts.extend(Text(f"  {s.text}") for s in summary.sentences)
    parts.append(_section("Facts"))
    if packet.facts:
        facts = _table("fact", "value", "source")
        for f in packet.facts:
            facts.add_row(
                Text(f"[{f.id}] {f.label}" if f.id else f.label),
                Text(f.value, style="dim" if f.value == MASK else ""),
                Text(_source(f.source), style="dim"),
            )
        parts.append(facts)
    else:
        parts.append(Text("  (none given)", style="dim"))

    parts.append(_section("Checks"))
    for c in packet.checks:
        mark = {True: Text("  ✓ ", style="green"), None: Text("  ? ", style="yellow")}.get(
            c.passed, Text("  ✗ ", style="red")
        )
        line = Text.assemble(mark, (c.name, "bold"), f": {c.detail}")
        if c.rule_id or c.rule_text:
            line.append(f"\n      rule {c.rule_id or '-'}: {c.rule_text or ''}", style="dim")
        parts.append(line)

    parts.append(_section("Missing"))
    parts.extend(Text(f"  • {item}") for item in packet.missing)
    if not packet.missing:
        parts.append(Text("  nothing", style="dim"))

    parts.append(_section("Recommendation"))
    recommendation = Text.assemble(
        (packet.recommendation, "bold"), f" (confidence {packet.confidence:.0%})"
    )
    if packet.recommendation_text:
        recommendation.append(f": {packet.recommendation_text}")
    parts.append(recommendation)
    parts.append(Text(""))
    parts.append(
        _pairs(
            [
                ("if you approve", packet.on_approve or "-"),
                ("if you reject", packet.on_reject or "-"),
            ]
        )
    )
    return parts


def decision_result(
    approval_id: str, kind: str, outcome: str, run: RunView, now: datetime
) -> RenderableType:
    """What a decision did, and where the run is now."""
    done = {"approve": "approved", "reject": "rejected", "edit": "edited and approved"}
    said = {
        "decided": f"{approval_id} {done.get(kind, kind)}",
        "awaiting_second_approver": f"{approval_id}: first approval recorded; a second, "
        "different reviewer must approve too",
        "escalated": f"{approval_id} escalated",
    }.get(outcome, f"{approval_id}: {outcome}")
    record = run.record
    state = Text.assemble(f"run {record.run_id} is now ", _status(record.status))
    if record.status == "waiting":
        until = f" (until {due(record.wait_until, now)})" if record.wait_until else ""
        state.append(f": {record.wait_reason or 'for an event'}{until}")
    elif record.summary:
        state.append(f": {record.summary}")
    parts: list[RenderableType] = [Text.assemble(("✓ ", "green"), said), state]
    if outcome == "decided" and record.pending_approval == approval_id:
        # still parked on the hold just decided: this process did not drive the run on
        parts.append(
            Text(
                "not driven on here: a worker, or a process whose connectors reach the "
                f"run's systems ({record.connectors or 'any'}), takes it from here; "
                f"`carebound status {record.run_id}` shows where it stands",
                style="yellow",
            )
        )
    pending = run.pending
    if pending is not None and pending.status == "pending":
        parts.append(
            Text(
                f"paused on {pending.request.approval_id} ({pending.request.tool}, role "
                f"{pending.required_role}, due {due(pending.deadline, now)})",
                style="yellow",
            )
        )
    return Group(*parts)


def reviewers_table(pack: PolicyPack) -> RenderableType:
    """The reviewer directory of a policy pack."""
    title = f"Reviewers of policy pack {pack.name}@{pack.version}"
    if not pack.reviewers:
        return Text(f"{title}: none", style="dim")
    table = _table("id", "name", "roles", title=title)
    for r in pack.reviewers:
        table.add_row(Text(r.id), Text(r.name), Text(", ".join(r.roles)))
    return table
