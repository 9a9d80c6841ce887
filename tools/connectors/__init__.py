"""carebound.tools.connectors: the typed interfaces to external systems.

Agents act on the outside world only through these interfaces (``typing.Protocol``):

* :class:`EHRConnector`: read, search and write FHIR R4 resources; move referral Tasks.
* :class:`OutreachConnector`: send document requests by fax/portal/email/phone, get replies.
* :class:`PayerConnector`: coverage, eligibility (is prior authorisation required?), prior auth.
* :class:`ERPConnector`: purchase orders, goods receipts, invoices; approve or hold an invoice.

Every method with an external effect takes ``idempotency_key`` and applies the effect at most
once per key; a repeat returns the first result.

A run's four connectors travel together as :class:`Connectors`, built per run by a
:class:`ConnectorsFactory` from a :class:`RunContext`. :func:`connectors_factory` picks one: the
simulator (:mod:`carebound.tools.connectors.simulated`, the default), the real systems a
connectors file names (:mod:`carebound.tools.connectors.config`, :class:`ConfiguredConnectors`),
or a service's own factory. A factory that is a :class:`WorldSeeder` can write a scenario's
:class:`WorldSpec` into its systems.
"""

from carebound.fhir._bindings import TaskStatus
from carebound.tools.connectors._bundle import (
    Connectors,
    ConnectorsFactory,
    RunContext,
    WorldSeeder,
)
from carebound.tools.connectors._ehr import EHRConnector
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
from carebound.tools.connectors._factory import (
    ConfiguredConnectors,
    ConnectorsSource,
    connectors_factory,
    connectors_identity,
    connectors_models,
    simulated_connectors,
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
)
from carebound.tools.connectors._payer import (
    EligibilityItem,
    EligibilityResult,
    PayerConnector,
)
from carebound.tools.connectors._unconnected import (
    UnconnectedERP,
    UnconnectedOutreach,
    UnconnectedPayer,
)
from carebound.tools.connectors._world_spec import WorldSpec

__all__ = [
    "STATUS_CODES",
    "TASK_STATUSES_NEEDING_REASON",
    "TASK_STATUS_SETTERS",
    "TASK_TERMINAL_STATUSES",
    "Channel",
    "ConfiguredConnectors",
    "ConnectorAuthError",
    "ConnectorError",
    "Connectors",
    "ConnectorsConfigError",
    "ConnectorsFactory",
    "ConnectorsSource",
    "EHRConnector",
    "ERPConnector",
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
    "SystemRefusedError",
    "SystemUnavailableError",
    "TaskPermissionError",
    "TaskRole",
    "TaskStatus",
    "UnconnectedERP",
    "UnconnectedOutreach",
    "UnconnectedPayer",
    "VersionConflictError",
    "WorldSeeder",
    "WorldSpec",
    "connectors_factory",
    "connectors_identity",
    "connectors_models",
    "simulated_connectors",
    "validate_resource",
    "version_of",
]
