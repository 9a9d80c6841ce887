"""The simulated ERP: purchase orders, goods receipts and invoices in Redis under the run's
hash tag."""

from __future__ import annotations

import json

import redis
from pydantic import JsonValue

from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors._erp import (
    ERPConnector,
    ErpData,
    ErpInvoice,
    ErpPurchaseOrder,
    ErpReceipt,
    InvoiceStatus,
)
from carebound.tools.connectors._errors import ConnectorError, ResourceNotFoundError
from carebound.tools.connectors.simulated._redis_state import (
    ConnectorState,
    EffectRecord,
    WriteBatch,
)


class SimulatedERP:
    """An ERP whose records live in Redis under the run's hash tag.

    Args:
        client: a sync Redis client.
        run_id: the run whose world this is.
        prefix: the key prefix.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._state = ConnectorState(client, run_id, prefix=prefix, system="erp")
        self._pos = self._state.key("purchase_orders")
        self._receipts = self._state.key("receipts")
        self._invoices = self._state.key("invoices")

    def purchase_order(self, po_number: str) -> ErpPurchaseOrder | None:
        """The purchase order ``po_number``, or None."""
        raw = self._state.hget(self._pos, po_number)
        return None if raw is None else ErpPurchaseOrder.model_validate_json(raw)

    def receipts(self, po_number: str) -> list[ErpReceipt]:
        """Goods receipts against ``po_number``, by receipt date then number."""
        found = [ErpReceipt.model_validate_json(raw) for raw in self._state.hvals(self._receipts)]
        return sorted(
            (r for r in found if r.po_number == po_number),
            key=lambda r: (r.received_on, r.receipt_number),
        )

    def invoice(self, invoice_number: str) -> ErpInvoice | None:
        """The invoice ``invoice_number``, or None."""
        raw = self._state.hget(self._invoices, invoice_number)
        return None if raw is None else ErpInvoice.model_validate_json(raw)

    def invoices(
        self, *, vendor: str | None = None, po_number: str | None = None
    ) -> list[ErpInvoice]:
        """Invoices matching every filter given, by invoice number."""
        found = [ErpInvoice.model_validate_json(raw) for raw in self._state.hvals(self._invoices)]
        return sorted(
            (
                i
                for i in found
                if (vendor is None or i.vendor == vendor)
                and (po_number is None or i.po_number == po_number)
            ),
            key=lambda i: i.invoice_number,
        )

    def approve_invoice(self, invoice_number: str, *, idempotency_key: str) -> ErpInvoice:
        """Approve an invoice (received or on hold) for payment.

        Raises:
            ResourceNotFoundError: there is no such invoice.
            ConnectorError: it was already approved under another idempotency key.
        """
        return self._set_status(
            invoice_number, "approved", None, idempotency_key, "approve_invoice"
        )

    def hold_invoice(self, invoice_number: str, reason: str, *, idempotency_key: str) -> ErpInvoice:
        """Put an invoice on hold for a person, saying why.

        Raises:
            ResourceNotFoundError: there is no such invoice.
            ConnectorError: the reason is empty, or the invoice is already approved.
        """
        if not reason.strip():
            raise ConnectorError(
                f"ERP: holding invoice {invoice_number} needs a reason",
                hint="say which check failed, e.g. 'price over PO by 4%'",
            )
        return self._set_status(invoice_number, "on_hold", reason, idempotency_key, "hold_invoice")

    def effects(self) -> list[EffectRecord]:
        """Every approval and hold applied, one per idempotency key, in order."""
        return self._state.effects()

    def attempts(self) -> int:
        """How many approve/hold calls came in, repeats included."""
        return self._state.attempts()

    def seed(self, batch: WriteBatch, data: ErpData) -> None:
        """Add writes that store ``data`` to a seeding batch."""
        for po in data.purchase_orders:
            batch.op("HSET", self._pos, po.po_number, po.model_dump_json())
        for receipt in data.receipts:
            batch.op("HSET", self._receipts, receipt.receipt_number, receipt.model_dump_json())
        for invoice in data.invoices:
            batch.op("HSET", self._invoices, invoice.invoice_number, invoice.model_dump_json())

    def _set_status(
        self,
        invoice_number: str,
        status: InvoiceStatus,
        reason: str | None,
        idempotency_key: str,
        action: str,
    ) -> ErpInvoice:
        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            raw = values[0]
            if raw is None:
                raise ResourceNotFoundError(
                    f"ERP: invoice {invoice_number} does not exist",
                    hint="check the invoice number (the supplier's, as posted in the ERP)",
                )
            before = ErpInvoice.model_validate_json(raw)
            if before.status == "approved":
                raise ConnectorError(
                    f"ERP: invoice {invoice_number} is already approved for payment",
                    hint="an approved invoice cannot be approved again or held; "
                    "raise a credit note or payment stop with the finance team",
                )
            after = before.model_copy(update={"status": status, "hold_reason": reason})
            batch = WriteBatch()
            batch.guard(self._invoices, invoice_number, raw)
            batch.op("HSET", self._invoices, invoice_number, after.model_dump_json())
            payload: dict[str, JsonValue] = {
                "invoice_number": invoice_number,
                "before": {"status": before.status, "hold_reason": before.hold_reason},
                "after": {"status": status, "hold_reason": reason},
            }
            return batch, payload, json.loads(after.model_dump_json())

        reads = [(self._invoices, invoice_number)]
        record = self._state.apply_once(idempotency_key, action, compute, reads=reads)
        return ErpInvoice.model_validate(record.result)


def _conforms(connector: SimulatedERP) -> ERPConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
