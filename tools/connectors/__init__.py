"""carebound.tools.connectors: the typed interfaces to external systems, and simulations of them.

Agents act on the outside world only through these interfaces (``typing.Protocol``, so real
integrations can be plugged in later):

* :class:`EHRConnector`: read, search and write FHIR R4 resources; move referral Tasks.
* :class:`OutreachConnector`: send document requests by fax/portal/email/phone, get replies.
* :class:`PayerConnector`: coverage, eligibility (is prior authorisation required?), prior auth.
* :class:`ERPConnector`: purchase orders, goods receipts, invoices; approve or hold an invoice.

Every method with an external effect takes ``idempotency_key`` and applies the effect at most
once per key; a repeat returns the first result.

The simulated implementations keep all their state in Redis under the run's hash tag, so a run
paused in one process resumes in another. :class:`World` bundles them for one run and seeds
them from a :class:`WorldSpec` (the scenario's scripted world).
"""

from carebound.fhir._bindings import TaskStatus
from carebound.tools.connectors._bundle import (
    Connectors,
    ConnectorsFactory,
    RunContext,
    WorldSeeder,
)
from carebound.tools.connectors._ehr import EHRConnector, SimulatedEHR
from carebound.tools.connectors._ehr_tasks import (
    TASK_STATUS_SETTERS,
    TASK_STATUSES_NEEDING_REASON,
    TASK_TERMINAL_STATUSES,
    TaskRole,
)
from carebound.tools.connectors._erp import (
    ERPConnector,
    ErpData,
    ErpInvoice,
    ErpInvoiceLine,
    ErpPoLine,
    ErpPurchaseOrder,
    ErpReceipt,
    ErpReceiptLine,
    InvoiceStatus,
    SimulatedERP,
)
from carebound.tools.connectors._errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorsConfigError,
    FhirValidationError,
    ResourceNotFoundError,
    SystemRefusedError,
    SystemUnavailableError,
    TaskPermissionError,
    VersionConflictError,
)
from carebound.tools.connectors._fhir import (
    STATUS_CODES,
    FhirResource,
    validate_resource,
    version_of,
)
from carebound.tools.connectors._outreach import (
    Channel,
    InboundDocument,
    OutreachConnector,
    OutreachReceipt,
    ReceivedDocument,
    ReplyScript,
    ScriptedDocument,
    SimulatedOutreach,
)
from carebound.tools.connectors._payer import (
    EligibilityItem,
    EligibilityResult,
    PayerConnector,
    SimulatedPayer,
)
from carebound.tools.connectors._redis_state import EffectRecord, System
from carebound.tools.connectors._world import World
from carebound.tools.connectors._world_spec import WorldSpec

__all__ = [
    "STATUS_CODES",
    "TASK_STATUSES_NEEDING_REASON",
    "TASK_STATUS_SETTERS",
    "TASK_TERMINAL_STATUSES",
    "Channel",
    "ConnectorAuthError",
    "ConnectorError",
    "Connectors",
    "ConnectorsConfigError",
    "ConnectorsFactory",
    "EHRConnector",
    "ERPConnector",
    "EffectRecord",
    "EligibilityItem",
    "EligibilityResult",
    "ErpData",
    "ErpInvoice",
    "ErpInvoiceLine",
    "ErpPoLine",
    "ErpPurchaseOrder",
    "ErpReceipt",
    "ErpReceiptLine",
    "FhirResource",
    "FhirValidationError",
    "InboundDocument",
    "InvoiceStatus",
    "OutreachConnector",
    "OutreachReceipt",
    "PayerConnector",
    "ReceivedDocument",
    "ReplyScript",
    "ResourceNotFoundError",
    "RunContext",
    "ScriptedDocument",
    "SimulatedEHR",
    "SimulatedERP",
    "SimulatedOutreach",
    "SimulatedPayer",
    "System",
    "SystemRefusedError",
    "SystemUnavailableError",
    "TaskPermissionError",
    "TaskRole",
    "TaskStatus",
    "VersionConflictError",
    "World",
    "WorldSeeder",
    "WorldSpec",
    "validate_resource",
    "version_of",
]
