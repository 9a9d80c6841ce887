"""carebound.domain.drafts: the checks a model's text passes before anyone sees it used.

Pure and deterministic (no model, no I/O): a model's draft is data in, a verdict out.

- ``check_outreach_note(note, protected=..., requested=...)`` -> ``NoteCheck``: the free-text
  part of an outreach message a model drafted, refused when it alters or adds to the rule-made
  parts (numbers, dates, deadlines, codes, ids, other documents), carries patient data, or
  carries links, addresses, markup or instructions;
- ``check_cited_summary(text, facts)`` -> ``CitedSummary``: a plain-language packet summary
  in which every sentence cites the facts it rests on (``[F3]``); sentences without a
  citation, citing an unknown id, or stating a number, date or name not in the facts it cites
  are dropped, each with its reason.
"""

from ._cited_summary import (
    MAX_SUMMARY_SENTENCES,
    CitedSentence,
    CitedSummary,
    DroppedSentence,
    SummaryFact,
    check_cited_summary,
)
from ._outreach_note import MAX_NOTE_CHARS, NoteCheck, check_outreach_note

__all__ = [
    "MAX_NOTE_CHARS",
    "MAX_SUMMARY_SENTENCES",
    "CitedSentence",
    "CitedSummary",
    "DroppedSentence",
    "NoteCheck",
    "SummaryFact",
    "check_cited_summary",
    "check_outreach_note",
]
