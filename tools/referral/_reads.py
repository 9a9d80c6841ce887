"""Read tools for decision packets: what a packet builder may look up in the EHR, each call
checked against the agent's grant and recorded in the audit trail (``carebound.engine.reads``).

They sit beside ``list_documents_on_file`` (the documents on file), which packets use too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carebound.tools._spec import ToolContext, tool
from carebound.tools.referral._args import NoArgs
from carebound.tools.referral._case import patient_ref
from carebound.tools.referral._facts import case_of


class ReadDocumentArgs(BaseModel):
    """One DocumentReference in the EHR, by id."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(min_length=1, max_length=64)


@tool(scope="ehr:DocumentReference.read", effect="read", phi={"documents"}, public=("document_id",))
def read_document(ctx: ToolContext, args: ReadDocumentArgs) -> dict[str, Any]:
    """One document on file in the EHR (its DocumentReference)."""
    return dict(ctx.connectors.ehr.read("DocumentReference", args.document_id))


@tool(scope="ehr:Communication.read", effect="read", phi={"contact", "documents"})
def list_replies_on_file(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
    """Communications about the patient in the EHR: outreach attempts and the replies to them
    (who sent a document, and when)."""
    found = ctx.connectors.ehr.search("Communication", subject=patient_ref(case_of(ctx)))
    return {"communications": [dict(c) for c in found]}
