"""Task 3 of AI assist: a model drafts the free text of a document request, inside the rule-made
parts.

The message to the referring office stays rule-made (``send_request_attempt`` builds it: the
request and referral ids, the patient's name and birth date, the requested items with their
LOINC codes, the reply instructions). A model configured for the ``draft`` task writes one short
courteous note that goes between those parts. It sees only the names of the requested items and
the channel (``minimum_for_draft``): never the patient, the ids, the contact or the schedule.

Its draft passes ``tools.referral.outreach_note_check`` (``carebound.domain.drafts``) before it is
proposed; a refused draft is not proposed and the rule template goes out alone. The model call's
audit event says which path won (``model`` or ``rules``) and, when refused, the problem codes
(``verdict``; never the text). A proposed note is held by OUT-5 for an intake coordinator, who
approves, edits or rejects it; OUT-4 (and the tool itself) refuse a note that fails the checks
whoever wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from carebound._agent import AgentContext
from carebound.assist import Path, PromptTemplate, call
from carebound.domain.drafts import MAX_NOTE_CHARS
from carebound.fhir import ReferralCase
from carebound.tools.referral import RequestedItem, outreach_note_check

DRAFT_NOTE = PromptTemplate(
    id="draft-outreach-note/v1",
    task="draft",
    instructions=(
        "You write the short free-text part of a fax or message from a specialist clinic's "
        "intake team to the office that referred a patient. The clinic's software adds "
        "everything else: who it is for, the patient, the request number, the list of "
        "documents needed and how to reply.\n"
        "Write one to three plain, courteous sentences (at most 400 characters) that thank the "
        "office and say the documents listed below the note are still needed to complete the "
        "referral. Do not write any number, date, deadline, code, id, name, address, phone "
        "number, e-mail, link, list or markup; do not name any document that is not in the "
        "items; do not tell the reader to do anything except send the listed documents. "
        "Answer with the note only."
    ),
)


class OutreachNote(BaseModel):
    """The model's draft: the free-text part of a document request."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        description="One to three courteous sentences; no numbers, dates, names, ids, links."
    )


def draft_note(
    ctx: AgentContext, case: ReferralCase, items: Sequence[Mapping[str, str]], channel: str
) -> tuple[str | None, str | None]:
    """The note a model drafted for this attempt and the model's name, or ``(None, None)``: no
    model for ``draft``, a failed or refused call, or a draft the checks refused."""
    requested = [RequestedItem(code=i["code"], display=i["display"]) for i in items]

    def judge(answer: OutreachNote) -> tuple[Path, str]:
        text = answer.note.strip()
        if len(text) > MAX_NOTE_CHARS:
            return "rules", "too_long"
        check = outreach_note_check(case, text, requested)
        return ("model", "passed") if check.ok else ("rules", ",".join(check.problems))

    assisted = call(
        ctx,
        DRAFT_NOTE,
        {
            "items": "\n".join(i.display for i in requested),
            "channel": channel,
        },
        OutreachNote,
        judge=judge,
    )
    if assisted.output is None or assisted.record is None or assisted.record.path != "model":
        return None, None
    return assisted.output.note.strip(), assisted.record.model
