"""The ERP: purchase orders, goods receipts and supplier invoices; approve or hold an invoice.

:class:`ERPConnector` is the interface (the simulated one keeps a run's records in Redis).
The records here are the ERP's own shapes (JSON-able pydantic models); the three-way-match
logic converts them into its own types.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

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
