"""Three-way match: an invoice against its purchase order and goods receipt.

An invoice is paid without a person only when every line is on the PO at a price within
tolerance, no more was billed than was received (quantities match exactly: no tolerance), the
vendor is the PO's, the total adds up and the invoice number is new. Money is ``Decimal``
throughout, never float.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Set
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound._errors import CareboundError

from ._text import alnum_upper, fold

__all__ = [
    "ExceptionKind",
    "GoodsReceipt",
    "Invoice",
    "InvoiceLine",
    "MatchException",
    "MatchInputError",
    "MatchResult",
    "MatchTolerances",
    "POLine",
    "PurchaseOrder",
    "ReceiptLine",
    "three_way_match",
]

_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)

ExceptionKind = Literal[
    "over_billing",
    "quantity_exceeds_receipt",
    "quantity_exceeds_order",
    "no_receipt",
    "line_not_on_po",
    "duplicate_invoice",
    "vendor_mismatch",
    "total_mismatch",
]
"""Why an invoice cannot be paid without a person."""

_FROZEN = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class MatchInputError(CareboundError):
    """The documents given to ``three_way_match`` do not belong together (different PO numbers)."""


class MatchTolerances(BaseModel):
    """How far an invoice may stray from its purchase order and still match.

    A unit price passes when its excess over the PO price is within ``price_pct`` percent OR
    within ``price_abs`` (either suffices). A lower price than ordered always passes. Quantities
    have no tolerance: billing more than was received is always an exception.
    """

    model_config = _FROZEN

    price_pct: Decimal = Field(default=Decimal("2"), ge=0, le=100)
    """Largest unit-price excess over the PO price, in percent of the PO price (typical: 1-3)."""
    price_abs: Decimal = Field(default=Decimal("1.00"), ge=0)
    """Largest unit-price excess over the PO price, in the invoice currency (e.g. 1.00)."""


class POLine(BaseModel):
    """One ordered line of a purchase order."""

    model_config = _FROZEN

    line_no: int = Field(ge=1)
    """Line number on the PO."""
    sku: str = Field(min_length=1)
    """Item code, matched exactly (after trimming) against invoice and receipt lines."""
    description: str = ""
    """Item description, for people."""
    quantity: Decimal = Field(gt=0)
    """Quantity ordered."""
    unit_price: Decimal = Field(ge=0)
    """Agreed unit price."""


class PurchaseOrder(BaseModel):
    """A purchase order: what was ordered, from whom, at what price."""

    model_config = _FROZEN

    po_number: str = Field(min_length=1)
    """PO number, quoted by the invoice and the goods receipt."""
    vendor: str = Field(min_length=1)
    """Vendor the PO was issued to."""
    lines: list[POLine] = Field(min_length=1)
    """Ordered lines."""


class ReceiptLine(BaseModel):
    """One received item on a goods receipt."""

    model_config = _FROZEN

    sku: str = Field(min_length=1)
    """Item code."""
    quantity_received: Decimal = Field(ge=0)
    """Quantity received in good order."""


class GoodsReceipt(BaseModel):
    """What the receiving dock actually took in against a PO."""

    model_config = _FROZEN

    receipt_id: str = Field(min_length=1)
    """Receipt document id."""
    po_number: str = Field(min_length=1)
    """PO the goods were received against."""
    lines: list[ReceiptLine] = Field(default_factory=list)
    """Received lines (several lines of one SKU add up)."""


class InvoiceLine(BaseModel):
    """One billed line of an invoice."""

    model_config = _FROZEN

    sku: str = Field(min_length=1)
    """Item code."""
    quantity: Decimal = Field(gt=0)
    """Quantity billed."""
    unit_price: Decimal = Field(ge=0)
    """Unit price billed."""


class Invoice(BaseModel):
    """A vendor's invoice quoting a PO."""

    model_config = _FROZEN

    invoice_number: str = Field(min_length=1)
    """The vendor's invoice number (duplicates are detected on it)."""
    vendor: str = Field(min_length=1)
    """Vendor that issued the invoice."""
    po_number: str = Field(min_length=1)
    """PO the invoice bills against."""
    lines: list[InvoiceLine] = Field(min_length=1)
    """Billed lines."""
    total: Decimal
    """Invoice total as stated by the vendor (no tax or freight is modelled: it must equal the
    sum of quantity x unit price, to the cent)."""


class MatchException(BaseModel):
    """One reason an invoice needs a person."""

    model_config = _FROZEN

    kind: ExceptionKind
    """The rule that failed."""
    sku: str | None = None
    """Item concerned, for line-level exceptions."""
    line: int | None = None
    """1-based position of the invoice line concerned (first one for a SKU billed on several)."""
    expected: str | None = None
    """What the PO, receipt or ledger says (a price, a quantity, a vendor, a total)."""
    actual: str | None = None
    """What the invoice says."""
    explanation: str
    """One sentence for the reviewer."""


class MatchResult(BaseModel):
    """The outcome of a three-way match."""

    model_config = _FROZEN

    invoice_number: str
    """The invoice matched."""
    po_number: str
    """The PO it was matched against."""
    status: Literal["matched", "exceptions"]
    """``matched`` when there is no exception: the invoice may be paid without a person."""
    exceptions: list[MatchException] = Field(default_factory=list)
    """Every failed rule, document-level first, then by invoice line."""

    @model_validator(mode="after")
    def _status_follows_exceptions(self) -> Self:
        if (self.status == "matched") != (not self.exceptions):
            raise ValueError("status is 'matched' exactly when there are no exceptions")
        return self


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _within(billed: Decimal, ordered: Decimal, tolerances: MatchTolerances) -> bool:
    excess = billed - ordered
    return (
        excess <= 0
        or excess <= ordered * tolerances.price_pct / _HUNDRED
        or excess <= tolerances.price_abs
    )


def _over_billing(
    index: int, line: InvoiceLine, po_lines: list[POLine], tolerances: MatchTolerances
) -> MatchException | None:
    # Several PO lines of one SKU: the highest price is the most the vendor could claim.
    basis = max(po_lines, key=lambda p: p.unit_price)
    if _within(line.unit_price, basis.unit_price, tolerances):
        return None
    excess = line.unit_price - basis.unit_price
    share = (
        f" ({(excess * _HUNDRED / basis.unit_price).quantize(_CENT)}%)" if basis.unit_price else ""
    )
    return MatchException(
        kind="over_billing",
        sku=line.sku,
        line=index,
        expected=str(basis.unit_price),
        actual=str(line.unit_price),
        explanation=(
            f"unit price {line.unit_price} is {excess}{share} above PO line {basis.line_no}'s "
            f"{basis.unit_price}, beyond both {tolerances.price_pct}% and {tolerances.price_abs}"
        ),
    )


def _document_checks(
    invoice: Invoice, po: PurchaseOrder, receipt: GoodsReceipt | None, seen: Set[str]
) -> list[MatchException]:
    found: list[MatchException] = []
    if alnum_upper(invoice.invoice_number) in {alnum_upper(s) for s in seen}:
        found.append(
            MatchException(
                kind="duplicate_invoice",
                actual=invoice.invoice_number,
                explanation=f"invoice {invoice.invoice_number} has already been processed",
            )
        )
    if alnum_upper(fold(invoice.vendor)) != alnum_upper(fold(po.vendor)):
        found.append(
            MatchException(
                kind="vendor_mismatch",
                expected=po.vendor,
                actual=invoice.vendor,
                explanation=f"invoice is from '{invoice.vendor}' but PO {po.po_number} "
                f"was issued to '{po.vendor}'",
            )
        )
    stated, computed = (
        _money(invoice.total),
        _money(sum((line.quantity * line.unit_price for line in invoice.lines), Decimal(0))),
    )
    if stated != computed:
        found.append(
            MatchException(
                kind="total_mismatch",
                expected=str(computed),
                actual=str(stated),
                explanation=f"invoice total {stated} is not the sum of its lines, {computed}",
            )
        )
    if receipt is None:
        found.append(
            MatchException(
                kind="no_receipt",
                explanation=f"no goods receipt against PO {po.po_number}: nothing is known "
                "to have arrived",
            )
        )
    return found


def _quantity_checks(
    invoice: Invoice, po_by_sku: dict[str, list[POLine]], receipt: GoodsReceipt | None
) -> list[MatchException]:
    billed: dict[str, Decimal] = defaultdict(Decimal)
    first_line: dict[str, int] = {}
    for index, line in enumerate(invoice.lines, start=1):
        sku = line.sku.strip()
        billed[sku] += line.quantity
        first_line.setdefault(sku, index)
    received: dict[str, Decimal] = defaultdict(Decimal)
    for got in receipt.lines if receipt else []:
        received[got.sku.strip()] += got.quantity_received
    found: list[MatchException] = []
    for sku, quantity in billed.items():
        if sku not in po_by_sku:
            continue
        ordered = sum((p.quantity for p in po_by_sku[sku]), Decimal(0))
        if quantity > ordered:
            found.append(
                MatchException(
                    kind="quantity_exceeds_order",
                    sku=sku,
                    line=first_line[sku],
                    expected=str(ordered),
                    actual=str(quantity),
                    explanation=f"{quantity} of {sku} billed but only {ordered} ordered",
                )
            )
        if receipt is not None and quantity > received[sku]:
            found.append(
                MatchException(
                    kind="quantity_exceeds_receipt",
                    sku=sku,
                    line=first_line[sku],
                    expected=str(received[sku]),
                    actual=str(quantity),
                    explanation=f"{quantity} of {sku} billed but {received[sku]} received "
                    f"(receipt {receipt.receipt_id}); quantities must match exactly",
                )
            )
    return found


def three_way_match(
    invoice: Invoice,
    po: PurchaseOrder,
    receipt: GoodsReceipt | None,
    *,
    tolerances: MatchTolerances,
    seen_invoices: Set[str] = frozenset(),
) -> MatchResult:
    """Match an invoice against its PO and goods receipt; list every exception found.

    Args:
        invoice: the vendor's invoice.
        po: the purchase order the invoice quotes.
        receipt: the goods receipt against that PO, or None if nothing was received.
        tolerances: the price tolerances of the policy pack.
        seen_invoices: invoice numbers already processed for this vendor (compared ignoring
            case and punctuation).

    Raises:
        MatchInputError: the invoice or the receipt quotes a PO other than ``po``.
    """
    for document, number in (
        ("invoice", invoice.po_number),
        ("receipt", receipt.po_number if receipt is not None else None),
    ):
        if number is not None and alnum_upper(number) != alnum_upper(po.po_number):
            raise MatchInputError(
                f"the {document} quotes PO {number!r} but was matched against PO {po.po_number!r}",
                hint="look the PO up by the invoice's po_number and the receipt by the PO",
            )
    po_by_sku: dict[str, list[POLine]] = defaultdict(list)
    for po_line in po.lines:
        po_by_sku[po_line.sku.strip()].append(po_line)
    found = _document_checks(invoice, po, receipt, seen_invoices)
    for index, line in enumerate(invoice.lines, start=1):
        sku = line.sku.strip()
        if sku not in po_by_sku:
            found.append(
                MatchException(
                    kind="line_not_on_po",
                    sku=sku,
                    line=index,
                    actual=f"{line.quantity} x {line.unit_price}",
                    explanation=f"{sku} is billed on invoice line {index} but is not on PO "
                    f"{po.po_number}",
                )
            )
            continue
        over = _over_billing(index, line, po_by_sku[sku], tolerances)
        if over is not None:
            found.append(over)
    found.extend(_quantity_checks(invoice, dict(po_by_sku), receipt))
    return MatchResult(
        invoice_number=invoice.invoice_number,
        po_number=po.po_number,
        status="exceptions" if found else "matched",
        exceptions=found,
    )
