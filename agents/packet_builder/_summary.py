"""Task 4 of AI assist: a plain-language summary of a decision packet, every sentence citing the
facts it rests on.

A model configured for the ``summarise`` task is shown the packet's question and its facts that
carry no PHI, each with its id (``[F1] Service requested: ...``); facts marked PHI (the
patient's name, birth date, member id, reason for referral, documents) are not shown at all, so
a sentence citing one cites an id the model was not given and is dropped. Its answer passes
``carebound.domain.drafts.check_cited_summary``: sentences without a citation, citing an unknown
id, stating a number, date or name not in the facts they cite, or carrying instructions or a
recommendation are dropped. What is left goes into the packet as ``model_summary``, shown as
model-written beside the facts (which gain their ids), never instead of them. No summary when
no model does the task, the call fails, or nothing is left; the model call's audit event says
which path won and how many sentences were kept (``verdict``).
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import AgentContext
from carebound.approvals import DecisionPacket, ModelSummary, SummarySentence
from carebound.assist import Path, PromptTemplate, call
from carebound.domain.drafts import CitedSummary, SummaryFact, check_cited_summary

SUMMARISE_PACKET = PromptTemplate(
    id="summarise-packet/v1",
    task="summarise",
    instructions=(
        "You summarise a decision packet for a reviewer at a specialist clinic, in plain "
        "language. The facts are listed one per line, each starting with its id in brackets, "
        "e.g. [F3]. Write at most six short sentences. End every sentence with the ids of the "
        "facts it rests on, in brackets, e.g. 'The order is active [F3].' or '[F1, F4]'. State "
        "only what those facts say: no number, date or name that is not in them, nothing from "
        "outside the facts, no advice, no recommendation, no instructions. A sentence without "
        "an id, or with a claim its facts do not support, is removed."
    ),
)


class PacketSummaryText(BaseModel):
    """The model's answer: the summary, every sentence ending with its fact ids."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="Short sentences, each ending with fact ids like [F3].")


def _verdict(checked: CitedSummary) -> str:
    total = len(checked.kept) + len(checked.dropped)
    reasons = Counter(d.reason for d in checked.dropped)
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"kept {len(checked.kept)} of {total}" + (f"; dropped: {why}" if why else "")


def with_summary(ctx: AgentContext, packet: DecisionPacket) -> DecisionPacket:
    """``packet`` with a model's cited summary and fact ids, or unchanged (see the module)."""
    if ctx.models is None or ctx.models.model_for("summarise") is None:
        return packet
    facts = [f.model_copy(update={"id": f"F{n}"}) for n, f in enumerate(packet.facts, start=1)]
    shown = [SummaryFact(id=f.id or "", text=f"{f.label}: {f.value}") for f in facts if not f.phi]
    checked: list[CitedSummary] = []

    def judge(answer: PacketSummaryText) -> tuple[Path, str]:
        result = check_cited_summary(answer.summary, shown)
        checked.append(result)
        return ("model" if result.kept else "rules"), _verdict(result)

    assisted = call(
        ctx,
        SUMMARISE_PACKET,
        {
            "question": packet.summary,
            "facts": "\n".join(f"[{f.id}] {f.text}" for f in shown),
        },
        PacketSummaryText,
        judge=judge,
    )
    if assisted.record is None or assisted.record.path != "model" or not checked:
        return packet
    result = checked[-1]
    summary = ModelSummary(
        model=assisted.record.model,
        sentences=[SummarySentence(text=s.text, cites=list(s.cites)) for s in result.kept],
        dropped=len(result.dropped),
    )
    return packet.model_copy(update={"facts": facts, "model_summary": summary})
