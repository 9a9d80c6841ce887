"""Stand-ins for a system a deployment has not connected (no ``[payer]`` or ``[office]`` in the
connectors file, no ERP): the payer answers "not connected" (which is not the same fact as "no
such member"); every other call is refused with a :class:`ConnectorError` the planner sees."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from carebound.tools.connectors._erp import ErpInvoice, ErpPurchaseOrder, ErpReceipt
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource
from carebound.tools.connectors._outreach import Channel, InboundDocument, OutreachReceipt
from carebound.tools.connectors._payer import EligibilityResult

_NO_ERP = (
    "no ERP connector ships with carebound: give the Runner a connectors factory whose "
    "Connectors carry yours (Runner(connectors=...))"
)


def _refused(system: str, hint: str) -> ConnectorError:
    return ConnectorError(f"no {system} is connected", hint=hint)


class UnconnectedPayer:
    """No payer: ``connected()`` is False and nothing can be verified with one."""

    def connected(self) -> bool:
        """Always False."""
        return False

    def coverage(self, member_id: str) -> FhirResource | None:
        """Refused: there is no payer to ask."""
        raise _refused("payer", "add [payer] to the connectors file")

    def beneficiary(self, coverage: FhirResource) -> FhirResource | None:
        """Refused: there is no payer to ask."""
        raise _refused("payer", "add [payer] to the connectors file")

    def eligibility(self, member_id: str, service_code: str | None = None) -> EligibilityResult:
        """Refused: there is no payer to ask."""
        raise _refused("payer", "add [payer] to the connectors file")

    def prior_auth(self, claim_ref: str) -> str | None:
        """Refused: there is no payer to ask."""
        raise _refused("payer", "add [payer] to the connectors file")


class UnconnectedOutreach:
    """No outreach channel: sends are refused, and no reply ever comes in."""

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Refused: no channel is configured."""
        raise _refused(
            "outreach channel",
            "add [office.cdex], [office.smtp] or [office.fax] to the connectors file",
        )

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """None: nothing was sent."""
        return []


class UnconnectedERP:
    """No ERP: every call is refused."""

    def purchase_order(self, po_number: str) -> ErpPurchaseOrder | None:
        """Refused."""
        raise _refused("ERP", _NO_ERP)

    def receipts(self, po_number: str) -> list[ErpReceipt]:
        """Refused."""
        raise _refused("ERP", _NO_ERP)

    def invoice(self, invoice_number: str) -> ErpInvoice | None:
        """Refused."""
        raise _refused("ERP", _NO_ERP)

    def invoices(
        self, *, vendor: str | None = None, po_number: str | None = None
    ) -> list[ErpInvoice]:
        """Refused."""
        raise _refused("ERP", _NO_ERP)

    def approve_invoice(self, invoice_number: str, *, idempotency_key: str) -> ErpInvoice:
        """Refused."""
        raise _refused("ERP", _NO_ERP)

    def hold_invoice(self, invoice_number: str, reason: str, *, idempotency_key: str) -> ErpInvoice:
        """Refused."""
        raise _refused("ERP", _NO_ERP)
