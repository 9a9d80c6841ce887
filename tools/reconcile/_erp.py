"""The three-way match of one ERP invoice: ERP records in, a ``MatchResult`` summary out.

The ERP's own shapes (``ErpPurchaseOrder``, ``ErpReceipt``, ``ErpInvoice``) are converted into
the match's types in ``to_match_documents``; everything else is ``three_way_match``'s rules.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound.domain.three_way import (
    ExceptionKind,
    GoodsReceipt,
    Invoice,
    InvoiceLine,
    MatchException,
    MatchInputError,
    MatchTolerances,
    POLine,
    PurchaseOrder,
    ReceiptLine,
    three_way_match,
)
from carebound.tools.connectors import ERPConnector, ErpInvoice, ErpPurchaseOrder, ErpReceipt

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")

PROCESSED = ("approved", "on_hold")
"""Invoice statuses that count as already processed (for duplicate detection)."""


class InvoiceIssue(BaseModel):
    """One reason an invoice needs a person: a three-way-match exception, or a PO that cannot
    be found or read at all."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ExceptionKind | Literal["po_not_found", "unmatchable"]
    sku: str | None = None
    line: int | None = None
    expected: str | None = None
    actual: str | None = None
    explanation: str


class InvoiceCheck(BaseModel):
    """One invoice's three-way match, as the reconciler reports and decides on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_number: str
    vendor: str
    po_number: str | None
    amount: str = Field(description="Sum of the invoice lines (quantity x unit price).")
    erp_status: str = Field(description="The invoice's status in the ERP when checked.")
    status: Literal["matched", "exceptions"]
    exceptions: list[InvoiceIssue] = Field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """The exception kinds, sorted and unique."""
        return sorted({e.kind for e in self.exceptions})


def to_match_documents(
    invoice: ErpInvoice, po: ErpPurchaseOrder, receipts: list[ErpReceipt]
) -> tuple[Invoice, PurchaseOrder, GoodsReceipt | None]:
    """The ERP records in the match's types. Zero-quantity lines (cancelled) are left out; all
    receipts against the PO are added up into one receipt.

    Raises:
        pydantic.ValidationError: a record cannot be a match document (e.g. no lines left).
    """
    lines = [
        InvoiceLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
        for line in invoice.lines
        if line.quantity > 0
    ]
    match_invoice = Invoice(
        invoice_number=invoice.invoice_number,
        vendor=invoice.vendor,
        po_number=invoice.po_number or po.po_number,
        lines=lines,
        total=sum((line.quantity * line.unit_price for line in lines), Decimal(0)),
    )
    order = PurchaseOrder(
        po_number=po.po_number,
        vendor=po.vendor,
        lines=[
            POLine(
                line_no=line.line,
                sku=line.sku,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in po.lines
            if line.quantity > 0
        ],
    )
    receipt = None
    if receipts:
        receipt = GoodsReceipt(
            receipt_id="+".join(r.receipt_number for r in receipts),
            po_number=po.po_number,
            lines=[
                ReceiptLine(sku=line.sku, quantity_received=line.quantity)
                for r in receipts
                for line in r.lines
            ],
        )
    return match_invoice, order, receipt


def _amount(invoice: ErpInvoice) -> Decimal:
    return sum((line.quantity * line.unit_price for line in invoice.lines), Decimal(0))


def _check(
    invoice: ErpInvoice, status: Literal["matched", "exceptions"], exceptions: list[InvoiceIssue]
) -> InvoiceCheck:
    return InvoiceCheck(
        invoice_number=invoice.invoice_number,
        vendor=invoice.vendor,
        po_number=invoice.po_number,
        amount=str(_amount(invoice)),
        erp_status=invoice.status,
        status=status,
        exceptions=exceptions,
    )


def _problem(
    invoice: ErpInvoice, kind: Literal["po_not_found", "unmatchable"], explanation: str
) -> InvoiceCheck:
    return _check(invoice, "exceptions", [InvoiceIssue(kind=kind, explanation=explanation)])


def check_invoice(
    erp: ERPConnector, invoice_number: str, tolerances: MatchTolerances
) -> InvoiceCheck | None:
    """Match invoice ``invoice_number`` against its PO and receipts; None if the ERP has no such
    invoice. Other invoices of the same vendor already approved or on hold count as processed
    (a repeat of their number is a duplicate)."""
    invoice: ErpInvoice | None = erp.invoice(invoice_number)
    if invoice is None:
        return None
    if not invoice.po_number:
        return _problem(invoice, "po_not_found", "the invoice quotes no purchase order")
    po: ErpPurchaseOrder | None = erp.purchase_order(invoice.po_number)
    if po is None:
        return _problem(
            invoice, "po_not_found", f"PO {invoice.po_number} does not exist in the ERP"
        )
    processed = [
        other
        for other in erp.invoices(vendor=invoice.vendor)
        if other.invoice_number != invoice.invoice_number and other.status in PROCESSED
    ]
    seen = {other.invoice_number for other in processed}
    try:
        documents = to_match_documents(invoice, po, erp.receipts(po.po_number))
        result = three_way_match(*documents, tolerances=tolerances, seen_invoices=seen)
    except (ValidationError, MatchInputError) as exc:
        reason = exc.message if isinstance(exc, MatchInputError) else "unreadable ERP records"
        return _problem(invoice, "unmatchable", f"the invoice cannot be matched: {reason}")
    return _check(invoice, result.status, [_issue(e, processed) for e in result.exceptions])


def _number(text: str) -> str:
    return _NOT_ALNUM.sub("", text).upper()


def _issue(exception: MatchException, processed: list[ErpInvoice]) -> InvoiceIssue:
    """The exception as reported; a duplicate names the invoice it repeats and its status."""
    issue = InvoiceIssue.model_validate(exception.model_dump())
    if exception.kind == "duplicate_invoice" and exception.actual:
        earlier = [i for i in processed if _number(i.invoice_number) == _number(exception.actual)]
        if earlier:
            first = earlier[0]
            status = first.status.replace("_", " ")
            issue = issue.model_copy(
                update={
                    "expected": first.invoice_number,
                    "explanation": f"invoice {exception.actual} repeats invoice "
                    f"{first.invoice_number} of the same vendor, already {status}",
                }
            )
    return issue
