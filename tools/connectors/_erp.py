"""The ERP: purchase orders, goods receipts and supplier invoices; approve or hold an invoice.

:class:`ERPConnector` is the interface; :class:`SimulatedERP` keeps a run's records in Redis.
The records here are the ERP's own shapes (JSON-able pydantic models); the three-way-match
logic converts them into its own types.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Literal, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from carebound.state.keys import DEFAULT_PREFIX
from carebound.tools.connectors._errors import ConnectorError, ResourceNotFoundError
from carebound.tools.connectors._redis_state import ConnectorState, EffectRecord, WriteBatch

InvoiceStatus = Literal["received", "approved", "on_hold"]
"""Where an invoice stands: waiting, approved for payment, or held for a person."""


class ErpPoLine(BaseModel):
    """One line of a purchase order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int = Field(ge=1)
    """Line number on the PO."""
    sku: str
    description: str = ""
    quantity: Decimal = Field(ge=0)
    unit_price: Decimal = Field(ge=0)


class ErpPurchaseOrder(BaseModel):
    """A purchase order as the ERP holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    po_number: str
    vendor: str
    currency: str = "USD"
    order_date: dt.date | None = None
    lines: list[ErpPoLine]


class ErpReceiptLine(BaseModel):
    """What one goods-receipt line says arrived against a PO line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    po_line: int = Field(ge=1)
    """The PO line number it receives against."""
    sku: str
    quantity: Decimal = Field(ge=0)


class ErpReceipt(BaseModel):
    """A goods receipt: what arrived, against which purchase order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    receipt_number: str
    po_number: str
    received_on: dt.date
    lines: list[ErpReceiptLine]


class ErpInvoiceLine(BaseModel):
    """One line of a supplier invoice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int = Field(ge=1)
    po_line: int | None = None
    """The PO line it bills, when the supplier said so."""
    sku: str
    description: str = ""
    quantity: Decimal = Field(ge=0)
    unit_price: Decimal = Field(ge=0)


class ErpInvoice(BaseModel):
    """A supplier invoice and where it stands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_number: str
    vendor: str
    po_number: str | None = None
    invoice_date: dt.date
    currency: str = "USD"
    lines: list[ErpInvoiceLine]
    status: InvoiceStatus = "received"
    hold_reason: str | None = None
    """Why it is on hold (set with status ``on_hold``)."""


class ErpData(BaseModel):
    """What a simulated ERP is seeded with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purchase_orders: list[ErpPurchaseOrder] = []
    receipts: list[ErpReceipt] = []
    invoices: list[ErpInvoice] = []


class ERPConnector(Protocol):
    """What agents may do in the ERP: read POs, receipts and invoices; approve or hold one."""

    def purchase_order(self, po_number: str) -> ErpPurchaseOrder | None:
        """The purchase order, or None when the ERP has none with that number."""
        ...

    def receipts(self, po_number: str) -> list[ErpReceipt]:
        """The goods receipts posted against a purchase order (maybe none)."""
        ...

    def invoice(self, invoice_number: str) -> ErpInvoice | None:
        """The invoice, or None."""
        ...

    def invoices(
        self, *, vendor: str | None = None, po_number: str | None = None
    ) -> list[ErpInvoice]:
        """Invoices filtered by vendor and/or PO (e.g. to spot a duplicate)."""
        ...

    def approve_invoice(self, invoice_number: str, *, idempotency_key: str) -> ErpInvoice:
        """Approve the invoice for payment and return it."""
        ...

    def hold_invoice(self, invoice_number: str, reason: str, *, idempotency_key: str) -> ErpInvoice:
        """Put the invoice on hold with a reason and return it."""
        ...


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
