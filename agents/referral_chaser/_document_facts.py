"""What a reviewer needs to decide a document hold (DOC-1, DOC-2): the document itself.

The packet of a ``file_document`` hold shows the document's text, who sent it and when it was
received, and, when DOC-2's detector flagged it, the flagged passages quoted. All of it comes
from the document, so every fact here is PHI (masked until a coordinator reveals it); the DOC-2
check's detail names only the kinds of instruction found (``InjectionReport.explanation``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carebound.approvals import PacketFact, SourceRef
from carebound.domain.documents import InjectionReport, attachment_text

#: Longest document text shown in a packet (characters); the rest is cut with a note.
MAX_TEXT_CHARS = 6000
#: Most flagged passages quoted.
MAX_PASSAGES = 6


def _received_by(doc_id: str, communications: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The Communication that carried ``DocumentReference/doc_id`` (the reply record), if any."""
    wanted = f"DocumentReference/{doc_id}"
    for communication in communications:
        for payload in communication.get("payload") or []:
            reference = (payload.get("contentReference") or {}).get("reference")
            if reference == wanted:
                return communication
    return {}


def document_facts(
    doc_id: str,
    resource: Mapping[str, Any],
    communications: Sequence[Mapping[str, Any]],
    report: InjectionReport | None,
) -> list[PacketFact]:
    """The document's text, sender and received time, and the passages DOC-2 flagged."""
    source = SourceRef(resource=f"DocumentReference/{doc_id}", field="content.attachment")
    facts: list[PacketFact] = []
    carrier = _received_by(doc_id, communications)
    sender = (carrier.get("sender") or {}).get("display")
    if sender:
        facts.append(
            PacketFact(
                label="Sender",
                value=str(sender),
                source=SourceRef(resource=f"Communication/{carrier.get('id')}", field="sender"),
                phi=True,
            )
        )
    received = carrier.get("received") or resource.get("date")
    if received:
        facts.append(
            PacketFact(
                label="Received",
                value=str(received),
                source=SourceRef(
                    resource=f"Communication/{carrier['id']}"
                    if carrier.get("id")
                    else f"DocumentReference/{doc_id}",
                    field="received" if carrier else "date",
                ),
            )
        )
    text = attachment_text(resource)
    if text is not None:
        shown = text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS]
        if len(text) > MAX_TEXT_CHARS:
            shown += f"\n... (cut: {len(text):,} characters in all)"
        facts.append(PacketFact(label="Document text", value=shown, source=source, phi=True))
    else:
        facts.append(
            PacketFact(
                label="Document text",
                value="no inline text: open the attachment in the EHR",
                source=source,
            )
        )
    if report is not None and report.flagged:
        for n, finding in enumerate(report.findings[:MAX_PASSAGES], start=1):
            facts.append(
                PacketFact(
                    label=f"Flagged passage {n} ({finding.kind})",
                    value=finding.passage,
                    source=source,
                    phi=True,
                )
            )
    return facts


__all__ = ["MAX_PASSAGES", "MAX_TEXT_CHARS", "document_facts"]
