"""carebound.tools.referral: the referral agents' tools, and what they read.

Every record goes to the EHR connector as FHIR R4: a document request is a CDex-style ``Task``,
each outreach attempt and each reply a ``Communication`` based on it, a hand-over to intake staff
and the routing to scheduling ``Task`` resources for people, and the decision on the referral
moves the referral ``Task``. Facts for the hold policy are computed from trusted data (the run's
case and the EHR), never from what a planner claims.

- ``_case``: the referral a case carries (parsed once per Bundle), its references, and the
  referring office's contacts (with the referral, or on file in the EHR);
- ``_evidence``: documents as evidence, classified from their text (with DOC-2's check);
- ``_args``: code systems and the tools' argument models;
- ``_facts``: shared reads and the trusted facts per tool;
- ``_tools``: the tools themselves, and ``CHASE_TOOLS`` / ``PACKET_TOOLS``;
- ``_reads``: read tools decision packets read the EHR through (audited, like every call).

The document rules themselves (classification, requirements, injection) are pure and live in
``carebound.domain.documents``; the agents' settings and schedules live with the agents.
"""

from ._args import (
    CAREBOUND_TASK,
    CDEX_TEMP,
    AttemptArgs,
    CloseRequestArgs,
    EscalateArgs,
    FileDocumentArgs,
    NoArgs,
    OpenRequestArgs,
    RecordReplyArgs,
    ReferralStatusArgs,
    RequestedItem,
    RouteArgs,
    SecondOpinion,
)
from ._case import (
    CHANNEL_OF_SYSTEM,
    Contact,
    case_contacts,
    ehr_contacts,
    patient_ref,
    pick_contact,
    reference_of,
    referral_case,
    referring_parties,
    same_contact,
    service_request_ref,
)
from ._evidence import (
    classify_resource,
    evidence_view,
    is_confident,
    parse_document,
    readable_text,
    typed_codes,
)
from ._facts import (
    case_of,
    document_for,
    is_received,
    outreach_note_check,
    patient_data,
    referral_task_id,
)
from ._fax_referral import ReferralDraftArgs, create_referral_from_fax, drafted_values
from ._reads import ReadDocumentArgs, list_replies_on_file, read_document
from ._tools import (
    CHASE_TOOLS,
    PACKET_TOOLS,
    close_document_request,
    escalate_to_staff,
    file_document,
    list_contacts_on_file,
    list_documents_on_file,
    open_document_request,
    record_reply,
    route_to_scheduling,
    send_request_attempt,
    set_referral_status,
)

__all__ = [
    "CAREBOUND_TASK",
    "CDEX_TEMP",
    "CHANNEL_OF_SYSTEM",
    "CHASE_TOOLS",
    "PACKET_TOOLS",
    "AttemptArgs",
    "CloseRequestArgs",
    "Contact",
    "EscalateArgs",
    "FileDocumentArgs",
    "NoArgs",
    "OpenRequestArgs",
    "ReadDocumentArgs",
    "RecordReplyArgs",
    "ReferralDraftArgs",
    "ReferralStatusArgs",
    "RequestedItem",
    "RouteArgs",
    "SecondOpinion",
    "case_contacts",
    "case_of",
    "classify_resource",
    "close_document_request",
    "create_referral_from_fax",
    "document_for",
    "drafted_values",
    "ehr_contacts",
    "escalate_to_staff",
    "evidence_view",
    "file_document",
    "is_confident",
    "is_received",
    "list_contacts_on_file",
    "list_documents_on_file",
    "list_replies_on_file",
    "open_document_request",
    "outreach_note_check",
    "parse_document",
    "patient_data",
    "patient_ref",
    "pick_contact",
    "read_document",
    "readable_text",
    "record_reply",
    "reference_of",
    "referral_case",
    "referral_task_id",
    "referring_parties",
    "route_to_scheduling",
    "same_contact",
    "send_request_attempt",
    "service_request_ref",
    "set_referral_status",
    "typed_codes",
]
