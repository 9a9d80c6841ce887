"""The public surface is pinned (``carebound`` and each public subpackage's ``__all__``), every
sub-package is shipped by the distribution, and the error tree drawn in ``carebound._errors`` is
the real one, with a unique, stable code per class."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
import tomllib

import pytest

import carebound
from carebound import _errors
from carebound._errors import CareboundError, DecisionRefusedError, StoreWriteRefusedError
from tests.conftest import PROJECT
from tests.test_layering import _modules

PUBLIC = {
    "AgentContext",
    "AgentDefinition",
    "AlreadyDecidedError",
    "ApprovalRequest",
    "ApprovalView",
    "Approve",
    "AsyncRunner",
    "CallResult",
    "CareboundError",
    "Clock",
    "DecideResult",
    "Decision",
    "DecisionPacket",
    "DecisionRefusedError",
    "Edit",
    "EffectClass",
    "Escalate",
    "FinishSpec",
    "Grant",
    "LeaseLostError",
    "ModelCall",
    "ModelConfig",
    "ModelConfigError",
    "NotFoundError",
    "Plan",
    "PlannerView",
    "PolicyPack",
    "ProposedCall",
    "ReadDeniedError",
    "Reject",
    "RunEvent",
    "RecoverReport",
    "RunReport",
    "RunIdTakenError",
    "RunStateError",
    "RunView",
    "Runner",
    "StoreUnavailableError",
    "StoreWriteRefusedError",
    "SweepReport",
    "SystemClock",
    "ToolContext",
    "ToolSpec",
    "VirtualClock",
    "WaitSpec",
    "load_policy_pack",
    "run_report",
    "tool",
}

MAPPED = {
    "carebound": "carebound",
    "carebound.agents": "agents",
    "carebound.tools": "tools",
    "carebound.guardrails": "guardrails",
}


def test_public_api_is_pinned() -> None:
    assert set(carebound.__all__) == PUBLIC
    for name in carebound.__all__:
        assert getattr(carebound, name) is not None


def test_every_engine_error_is_exported() -> None:
    """The engine's errors live in ``carebound._errors`` and each is public: a service catches
    them from ``carebound`` (``ReadDeniedError`` was missing)."""
    defined = {
        name
        for name, value in vars(_errors).items()
        if isinstance(value, type) and issubclass(value, CareboundError)
    }
    assert defined - set(carebound.__all__) == set()


def test_one_export_table() -> None:
    """``__all__``, ``dir()`` and the lazy loader all come from the table in ``__init__``."""
    assert carebound.__all__ == tuple(sorted(carebound._EXPORTS))
    assert dir(carebound) == list(carebound.__all__)
    for name, module in carebound._EXPORTS.items():
        assert getattr(carebound, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        carebound.Nope  # noqa: B018


def test_importing_carebound_loads_no_export() -> None:
    """Names load on first use: ``import carebound`` (and so the CLI's start) stays light."""
    code = (
        "import sys, carebound\n"
        "loaded = sorted(set(carebound._EXPORTS.values()) & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "assert 'langgraph' not in sys.modules and 'redis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT)


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in MAPPED.items():
        root = PROJECT / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if (
                rel.parts
                and rel.parts[0] in {"agents", "tools", "guardrails"}
                and package == ("carebound")
            ):
                continue
            found.add(".".join([package, *rel.parts]))
    assert found == listed, f"add to / remove from pyproject packages: {found ^ listed}"


# -- public subpackages: each one's __all__ is pinned ------------------------------------------

SUBPACKAGES: dict[str, set[str]] = {
    "carebound.agents": {
        "ENTRY_POINT_GROUP", "SHIPPED", "AgentRegistry", "load_registry", "registry",
    },
    "carebound.agents.demo": {
        "DEMO", "NOTE_CODE", "TOOLS", "plan",
    },
    "carebound.agents.packet_builder": {
        "Assessment", "MEMORY_KEY", "PACKET_BUILDER", "PayerCheck", "TOOLS", "assess",
        "evidence_case", "open_issues_of", "packet_findings", "payer_check", "plan_packet",
        "referral_packet",
    },
    "carebound.agents.reconciler": {
        "RECONCILER", "RECONCILER_TOOLS", "ReconcilerSettings", "plan_reconcile",
        "reconcile_packet", "reconciler_settings",
    },
    "carebound.agents.referral_chaser": {
        "ChaseMemory", "MEMORY_KEY", "REFERRAL_CHASER", "TOOLS", "chase_findings", "chase_packet",
        "missing_now", "plan_chase",
    },
    "carebound.agents.referral_intake": {
        "IntakeMemory", "MEMORY_KEY", "REFERRAL_INTAKE", "TOOLS", "intake_packet", "plan_intake",
    },
    "carebound.approvals": {
        "ApprovalRequest", "ApprovalStatus", "ApprovalStore", "ApprovalView", "Approve",
        "ArgChange", "DecideStepReply", "Decision", "DecisionPacket", "DecisionRecord", "Edit",
        "Escalate", "ModelSummary", "PacketCheck", "PacketFact", "PinnedVersions", "Reject",
        "SourceRef", "SummarySentence", "args_diff", "run_id_of",
    },
    "carebound.audit": {
        "GENESIS_HASH", "MAX_DETAIL_CHARS", "Actor", "AnchorsFile", "AuditAction",
        "AuditCheckpoint", "AuditConflictError", "AuditCorruptError", "AuditDetailError",
        "AuditEvent", "AuditExportError", "AuditIndexEntry", "AuditKeyError", "AuditKeyring",
        "AuditLog", "AuditOutcome", "AuditTrail", "ExportReport", "VerifyResult",
        "canonical_json", "export_checkpoints", "read_anchors", "ArchiveReport",
        "archive_chains", "archive_lock", "verify_archive",
    },
    "carebound.assist": {
        "DATA_RULES", "ENV_MODEL", "MINIMUM", "REDACTED", "TASKS", "AssistContext", "Assisted",
        "Minimised",
        "ModelCall", "ModelConfig", "ModelConfigError", "Outcome", "Path", "PromptTemplate",
        "Task", "call", "data_block", "load_model", "minimum_for_classify", "minimum_for_draft",
        "minimum_for_extract", "minimum_for_summarise", "model_name", "resolve_models",
    },
    "carebound.checkpoint": {"AsyncRedisSaver", "RedisSaver"},
    "carebound.domain.coverage": {
        "CoverageProblem", "CoverageTerms", "CoverageVerdict", "case_coverage", "coverage_in_force",
        "coverage_terms", "eligibility_inforce", "service_date",
    },
    "carebound.domain.documents": {
        "CLASSIFY_MIN_CONFIDENCE", "Classification", "DEFAULT_REQUIREMENTS", "DOCUMENT_TYPES",
        "DocumentRequirement", "FLAG_AT", "INJECTION_CONFIDENCE_CAP", "InjectionFinding",
        "InjectionReport", "MissingItem", "UNKNOWN", "attachment_text", "classify",
        "classify_local", "detect_injection", "document_texts", "is_written_in",
        "missing_documents", "with_injection",
    },
    "carebound.eval": {
        "BUILT_IN", "CalibrationBucket", "ClassFigures", "ClassifierFigures", "CorpusDocument",
        "DocumentClassifier", "DocumentLabel", "DocumentTraits", "DocumentsEvaluation",
        "ExtractionFigures", "ExtractionLabel", "FieldFigures", "InjectionFigures", "PatientLabel",
        "ReferralExtractor", "accepted", "corpus_sha256", "evaluate_documents",
        "expected_calibration_error", "load_corpus", "render_evaluation",
    },
    "carebound.domain.identity": {
        "IDENTITY_WEIGHTS", "IdentityAttribute", "KIND_RISK", "Mismatch", "MismatchField",
        "MismatchKind", "NPI_PREFIX", "PAYER_SOURCE", "PersonRecord", "Risk", "agreeing_attributes",
        "check_record", "compare_records", "identity_score", "npi_is_valid",
    },
    "carebound.domain.three_way": {
        "ExceptionKind", "GoodsReceipt", "Invoice", "InvoiceLine", "MatchException",
        "MatchInputError", "MatchResult", "MatchTolerances", "POLine", "PurchaseOrder",
        "ReceiptLine", "three_way_match",
    },
    "carebound.guardrails": {
        "AgentPolicy", "Allowed", "Budgets", "CallBudget", "Denied", "GateVerdict", "Grant",
        "Held", "HoldRule", "InvalidArgs", "OnTimeout", "OverBudget", "PermissionResult",
        "PolicyCheck", "PolicyPack", "PolicyPackError", "PolicyVerdict", "Reviewer", "RuleMatch",
        "ScopeGrant", "UnknownTool", "approver_identity", "arg_problems", "authorize_decision",
        "check_escalation", "check_permission", "escalation_targets", "evaluate_rules",
        "format_validation_error", "judge", "load_policy_pack",
    },
    "carebound.scenario": {
        "Expectation", "Scenario", "ScenarioError", "ScenarioResult", "ScenarioWorld",
        "ScriptedDecision", "load_scenario", "run_case", "run_scenario",
    },
    "carebound.store": {
        "EmbeddedStatus", "Store", "StoreSettings", "connect", "mask_url", "server_status",
        "stop_server",
    },
    "carebound.testing": {
        "FakeChatModel",
        "Fault",
        "FaultProxy",
        "FaultSchedule",
        "ProxiedRequest",
        "finish",
        "structured",
        "tool_calls",
    },
    "carebound.tools": {
        "EffectClass", "FactValue", "JSONValue", "ToolContext", "ToolDefinitionError", "ToolSpec",
        "args_hash", "tool",
    },
    "carebound.tools.connectors": {
        "STATUS_CODES", "TASK_STATUSES_NEEDING_REASON", "TASK_STATUS_SETTERS",
        "TASK_TERMINAL_STATUSES", "Channel", "ConfiguredConnectors", "ConnectorAuthError",
        "ConnectorError", "Connectors", "ConnectorsConfigError", "ConnectorsFactory",
        "ConnectorsSource", "EHRConnector", "ERPConnector", "EligibilityItem", "EligibilityResult",
        "ErpData", "ErpInvoice", "ErpInvoiceLine", "ErpPoLine", "ErpPurchaseOrder", "ErpReceipt",
        "ErpReceiptLine", "FhirResource", "FhirValidationError", "InboundDocument",
        "InvoiceStatus", "OutreachConnector", "OutreachReceipt", "PayerConnector",
        "ReceivedDocument", "ReplyScript", "ResourceNotFoundError", "RunContext",
        "ScriptedDocument", "SystemRefusedError", "SystemUnavailableError", "TaskPermissionError",
        "TaskRole", "TaskStatus", "UnconnectedERP", "UnconnectedOutreach", "UnconnectedPayer",
        "VersionConflictError", "WorldSeeder", "WorldSpec", "connectors_factory",
        "connectors_identity", "connectors_models", "simulated_connectors", "validate_resource",
        "version_of",
    },
    "carebound.tools.connectors.mail": {"send_mail"},
    "carebound.tools.connectors.simulated": {
        "EffectRecord", "SimulatedConnectors", "SimulatedEHR", "SimulatedERP",
        "SimulatedOutreach", "SimulatedPayer", "System", "World",
    },
    "carebound.tools.connectors.config": {
        "CONNECTORS_FILE_VAR", "ENV_PREFIX", "Auth", "BearerAuth", "BreakerSettings", "CdexConfig",
        "ConnectorsConfig", "EhrConfig", "ErpConfig", "FaxConfig", "FhirServerConfig", "NoAuth",
        "OfficeConfig", "PayerConfig", "RetrySettings", "SmartAuth", "SmtpConfig", "Timeouts",
        "configured_connectors_file", "connectors_config", "load_connectors_config",
    },
    "carebound.tools.connectors.fhir_rest": {
        "CLIENT_ASSERTION_TYPE", "EFFECT_SYSTEM", "BearerToken", "FhirRestClient", "RestEHR",
        "RestPayer", "SigningAlgorithm", "SmartBackendAuth", "build_auth", "build_client",
        "build_ehr", "build_payer", "effect_identifier", "effect_search", "seed_world",
    },
    "carebound.tools.connectors.fhir_world": {
        "FhirBases", "ReferringOffice", "local_server_config", "local_server_connectors",
        "played_office", "seed_configured_world",
        "seed_world", "world_bundles",
    },
    "carebound.tools.reconcile": {
        "REVIEW_TOOLS", "ApprovalAssessment", "FixAssessment", "LinkAssessment",
        "MemberIdAssessment", "reconcile_review_fix", "reconcile_review_invoice",
        "reconcile_review_link", "reconcile_review_member_id",
        "ApproveInvoiceArgs", "FindPatientArgs", "FixDemographicArgs", "FixMemberIdArgs",
        "HoldInvoiceArgs", "InvoiceCheck", "InvoiceIssue", "LinkPatientArgs", "MatchInvoicesArgs",
        "PATIENT_FIELDS", "RECONCILE_TOOLS", "ReadCoverageArgs", "assess_approval", "assess_fix",
        "assess_link", "assess_member_id", "case_referral", "field_value",
        "reconcile_approve_invoice", "reconcile_find_patient", "reconcile_fix_demographic",
        "reconcile_fix_member_id", "reconcile_hold_invoice", "reconcile_link_patient",
        "reconcile_match_invoices", "reconcile_read_coverage",
    },
    "carebound.tools.referral": {
        "ReadDocumentArgs", "list_replies_on_file", "read_document",
        "AttemptArgs", "CAREBOUND_TASK", "CDEX_TEMP", "CHANNEL_OF_SYSTEM", "CHASE_TOOLS",
        "CloseRequestArgs", "Contact", "EscalateArgs", "FileDocumentArgs", "NoArgs",
        "OpenRequestArgs", "PACKET_TOOLS", "RecordReplyArgs", "ReferralStatusArgs", "RequestedItem",
        "RouteArgs", "SecondOpinion", "readable_text", "case_contacts", "case_of",
        "ReferralDraftArgs", "create_referral_from_fax", "drafted_values",
        "classify_resource", "close_document_request",
        "document_for", "ehr_contacts", "escalate_to_staff", "evidence_view", "file_document",
        "is_confident", "is_received", "list_contacts_on_file", "list_documents_on_file",
        "open_document_request", "outreach_note_check", "parse_document", "patient_data",
        "patient_ref", "pick_contact", "record_reply",
        "reference_of", "referral_case", "referral_task_id", "referring_parties",
        "route_to_scheduling", "same_contact", "send_request_attempt", "service_request_ref",
        "set_referral_status", "typed_codes",
    },
    "carebound.web": {
        "CredentialError", "RateLimit", "RateLimiter", "ServiceToken", "UserStore", "WebSettings",
        "create_app", "simulated_world",
    },
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(SUBPACKAGES))
def test_subpackage_exports_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert exported == SUBPACKAGES[package], (
        f"{package}.__all__ changed: added {sorted(exported - SUBPACKAGES[package])}, "
        f"removed {sorted(SUBPACKAGES[package] - exported)}"
    )
    assert len(module.__all__) == len(exported), f"{package}.__all__ lists a name twice"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def exported_classes() -> dict[str, set[str]]:
    """Class name -> where each distinct class of that name is exported (``module.Name``),
    over ``carebound`` and every pinned subpackage; a class re-exported elsewhere counts once."""
    seen: dict[str, dict[int, str]] = {}
    for package in ["carebound", *sorted(SUBPACKAGES)]:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type):
                seen.setdefault(name, {}).setdefault(id(value), f"{package}.{name}")
    return {name: set(where.values()) for name, where in seen.items()}


def test_no_two_public_classes_share_a_name() -> None:
    """A reader who meets ``DecideResult`` knows which one it is."""
    shared = {name: where for name, where in exported_classes().items() if len(where) > 1}
    assert shared == {}


# -- the error tree ---------------------------------------------------------------------------

TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>\w+Error) \[(?P<code>\w+)\]")


def drawn_tree(doc: str) -> dict[str, tuple[str | None, str]]:
    """The tree drawn in ``carebound._errors``'s docstring: name -> (parent, code)."""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    drawn: dict[str, tuple[str | None, str]] = {}
    parents: list[str] = []
    for line in textwrap.dedent(block).splitlines():
        match = TREE_LINE.match(line)
        assert match, f"not a tree line: {line!r}"
        depth = len(match["indent"]) // 4
        parents[depth:] = [match["name"]]
        drawn[match["name"]] = (parents[depth - 1] if depth else None, match["code"])
    return drawn


def actual_tree() -> dict[str, tuple[str | None, str]]:
    """Every CareboundError class in the distribution: name -> (parent, code)."""
    for module, _path in _modules():
        importlib.import_module(module)
    tree: dict[str, tuple[str | None, str]] = {}
    todo: list[type[CareboundError]] = [CareboundError]
    while todo:
        cls = todo.pop()
        parent = next((b for b in cls.__bases__ if issubclass(b, CareboundError)), None)
        assert cls.__name__ not in tree, f"two error classes are named {cls.__name__}"
        tree[cls.__name__] = (parent.__name__ if parent else None, cls.code)
        todo += cls.__subclasses__()
    return tree


def test_the_docstring_draws_every_error_with_its_code() -> None:
    assert _errors.__doc__ is not None
    drawn, actual = drawn_tree(_errors.__doc__), actual_tree()
    assert drawn.keys() == actual.keys(), (
        f"draw in carebound/_errors.py: {sorted(actual.keys() - drawn.keys())}; "
        f"no longer exist: {sorted(drawn.keys() - actual.keys())}"
    )
    assert drawn == actual


def test_error_codes_are_unique_and_each_class_has_its_own() -> None:
    codes = {name: code for name, (_parent, code) in actual_tree().items()}
    assert len(set(codes.values())) == len(codes), codes
    assert CareboundError.code == "carebound"
    assert StoreWriteRefusedError.code == "store_write_refused"


def test_the_tree_check_can_fail() -> None:
    assert _errors.__doc__ is not None
    doc = _errors.__doc__
    missing = "\n".join(line for line in doc.splitlines() if "StoreWriteRefused" not in line)
    assert "StoreWriteRefusedError" not in drawn_tree(missing)
    assert drawn_tree(missing) != actual_tree()
    moved = doc.replace("│   └── StoreWriteRefusedError", "├── StoreWriteRefusedError")
    assert drawn_tree(moved)["StoreWriteRefusedError"][0] == "CareboundError"
    recoded = doc.replace("[lease_lost]", "[lease_gone]")
    assert drawn_tree(recoded) != actual_tree()


def test_a_decision_refusal_narrows_its_code_to_the_reason() -> None:
    error = DecisionRefusedError("no", code="wrong_role")
    assert (error.code, DecisionRefusedError.code) == ("wrong_role", "decision_refused")
