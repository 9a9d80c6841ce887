"""Three-way match of invoice, purchase order and goods receipt."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from carebound._errors import CareboundError
from carebound.domain.three_way import (
    GoodsReceipt,
    Invoice,
    InvoiceLine,
    MatchException,
    MatchInputError,
    MatchResult,
    MatchTolerances,
    POLine,
    PurchaseOrder,
    ReceiptLine,
    three_way_match,
)

TOLERANCES = MatchTolerances()  # 2 % or 1.00, whichever is larger

PO = PurchaseOrder(
    po_number="PO-1001",
    vendor="Medline Industries",
    lines=[
        POLine(
            line_no=1,
            sku="GLV-NIT-M",
            description="Nitrile exam gloves, medium, box of 100",
            quantity=Decimal(40),
            unit_price=Decimal("8.50"),
        ),
        POLine(
            line_no=2,
            sku="SYR-10ML",
            description="10 mL Luer-lock syringe, box of 100",
            quantity=Decimal(10),
            unit_price=Decimal("24.00"),
        ),
        POLine(
            line_no=3,
            sku="WCH-STD",
            description="Standard wheelchair, 18 in seat",
            quantity=Decimal(2),
            unit_price=Decimal("189.00"),
        ),
    ],
)

RECEIPT = GoodsReceipt(
    receipt_id="GR-5531",
    po_number="PO-1001",
    lines=[
        ReceiptLine(sku="GLV-NIT-M", quantity_received=Decimal(40)),
        ReceiptLine(sku="SYR-10ML", quantity_received=Decimal(10)),
        ReceiptLine(sku="WCH-STD", quantity_received=Decimal(2)),
    ],
)


def invoice(prices: dict[str, str] | None = None, **fields: Any) -> Invoice:
    """Medline's invoice for the PO, billing what was ordered; override prices or fields."""
    prices = {"GLV-NIT-M": "8.50", "SYR-10ML": "24.00", "WCH-STD": "189.00", **(prices or {})}
    quantities = {"GLV-NIT-M": 40, "SYR-10ML": 10, "WCH-STD": 2}
    lines = [
        InvoiceLine(sku=sku, quantity=Decimal(quantities[sku]), unit_price=Decimal(price))
        for sku, price in prices.items()
    ]
    values: dict[str, Any] = {
        "invoice_number": "INV-2024-0117",
        "vendor": "Medline Industries",
        "po_number": "PO-1001",
        "lines": lines,
        "total": sum((line.quantity * line.unit_price for line in lines), Decimal(0)),
    }
    values.update(fields)
    return Invoice(**values)


def kinds(result: MatchResult) -> list[str]:
    return [e.kind for e in result.exceptions]


def only(result: MatchResult) -> MatchException:
    assert result.status == "exceptions"
    assert len(result.exceptions) == 1, result.exceptions
    return result.exceptions[0]


def test_clean_match() -> None:
    result = three_way_match(invoice(), PO, RECEIPT, tolerances=TOLERANCES)
    assert result.status == "matched"
    assert result.exceptions == []
    assert (result.invoice_number, result.po_number) == ("INV-2024-0117", "PO-1001")


def test_price_within_percentage_but_above_absolute() -> None:
    # 189.00 -> 192.78 is 3.78 over (more than 1.00) but exactly 2 %.
    result = three_way_match(invoice({"WCH-STD": "192.78"}), PO, RECEIPT, tolerances=TOLERANCES)
    assert result.status == "matched"


def test_price_within_absolute_but_above_percentage() -> None:
    # 8.50 -> 9.50 is 11.8 % over but exactly 1.00.
    result = three_way_match(invoice({"GLV-NIT-M": "9.50"}), PO, RECEIPT, tolerances=TOLERANCES)
    assert result.status == "matched"


def test_lower_price_than_ordered_passes() -> None:
    result = three_way_match(invoice({"SYR-10ML": "21.00"}), PO, RECEIPT, tolerances=TOLERANCES)
    assert result.status == "matched"


@pytest.mark.parametrize(("sku", "price"), [("WCH-STD", "192.79"), ("GLV-NIT-M", "9.51")])
def test_over_billing_beyond_both_tolerances(sku: str, price: str) -> None:
    exception = only(three_way_match(invoice({sku: price}), PO, RECEIPT, tolerances=TOLERANCES))
    assert exception.kind == "over_billing"
    assert exception.sku == sku
    assert exception.actual == price
    assert exception.expected == str(next(p.unit_price for p in PO.lines if p.sku == sku))


def test_tighter_tolerances_from_a_policy_pack() -> None:
    strict = MatchTolerances.model_validate({"price_pct": "1", "price_abs": "0.25"})
    result = three_way_match(invoice({"SYR-10ML": "24.30"}), PO, RECEIPT, tolerances=strict)
    assert kinds(result) == ["over_billing"]
    assert "1%" in result.exceptions[0].explanation
    assert three_way_match(
        invoice({"SYR-10ML": "24.24"}), PO, RECEIPT, tolerances=strict
    ).status == ("matched")


def test_billed_more_than_received() -> None:
    short = RECEIPT.model_copy(
        update={
            "lines": [
                ReceiptLine(sku="GLV-NIT-M", quantity_received=Decimal(30)),
                ReceiptLine(sku="SYR-10ML", quantity_received=Decimal(10)),
                ReceiptLine(sku="WCH-STD", quantity_received=Decimal(2)),
            ]
        }
    )
    exception = only(three_way_match(invoice(), PO, short, tolerances=TOLERANCES))
    assert exception.kind == "quantity_exceeds_receipt"
    assert (exception.sku, exception.line) == ("GLV-NIT-M", 1)
    assert (exception.expected, exception.actual) == ("30", "40")


def test_item_missing_from_receipt_counts_as_none_received() -> None:
    partial = RECEIPT.model_copy(update={"lines": RECEIPT.lines[:2]})
    exception = only(three_way_match(invoice(), PO, partial, tolerances=TOLERANCES))
    assert (exception.kind, exception.sku, exception.expected) == (
        "quantity_exceeds_receipt",
        "WCH-STD",
        "0",
    )


def test_billed_more_than_ordered() -> None:
    lines = [
        *invoice().lines[:2],
        InvoiceLine(sku="WCH-STD", quantity=Decimal(3), unit_price=Decimal("189.00")),
    ]
    bill = invoice(lines=lines, total=Decimal("1147.00"))
    received = RECEIPT.model_copy(
        update={
            "lines": [*RECEIPT.lines[:2], ReceiptLine(sku="WCH-STD", quantity_received=Decimal(3))]
        }
    )
    assert kinds(three_way_match(bill, PO, received, tolerances=TOLERANCES)) == [
        "quantity_exceeds_order"
    ]


def test_no_receipt() -> None:
    result = three_way_match(invoice(), PO, None, tolerances=TOLERANCES)
    assert kinds(result) == ["no_receipt"]


def test_line_not_on_po() -> None:
    gowns = InvoiceLine(sku="GWN-ISO-L", quantity=Decimal(5), unit_price=Decimal("31.25"))
    bill = invoice(lines=[*invoice().lines, gowns], total=Decimal("1114.25"))
    exception = only(three_way_match(bill, PO, RECEIPT, tolerances=TOLERANCES))
    assert (exception.kind, exception.sku, exception.line) == ("line_not_on_po", "GWN-ISO-L", 4)


def test_duplicate_invoice() -> None:
    result = three_way_match(
        invoice(), PO, RECEIPT, tolerances=TOLERANCES, seen_invoices={"inv 2024-0117"}
    )
    assert kinds(result) == ["duplicate_invoice"]
    assert (
        three_way_match(
            invoice(), PO, RECEIPT, tolerances=TOLERANCES, seen_invoices={"INV-2024-0118"}
        ).status
        == "matched"
    )


def test_vendor_mismatch() -> None:
    exception = only(
        three_way_match(invoice(vendor="Cardinal Health"), PO, RECEIPT, tolerances=TOLERANCES)
    )
    assert (exception.kind, exception.expected, exception.actual) == (
        "vendor_mismatch",
        "Medline Industries",
        "Cardinal Health",
    )
    # Case and spacing are not another vendor.
    assert (
        three_way_match(
            invoice(vendor="MEDLINE  industries"), PO, RECEIPT, tolerances=TOLERANCES
        ).status
        == "matched"
    )


def test_total_mismatch_in_exact_decimal() -> None:
    exception = only(
        three_way_match(invoice(total=Decimal("985.00")), PO, RECEIPT, tolerances=TOLERANCES)
    )
    assert (exception.kind, exception.expected, exception.actual) == (
        "total_mismatch",
        "958.00",
        "985.00",
    )
    # 0.1 + 0.2 style sums are exact in Decimal: three lines of 0.10 total 0.30.
    dimes = [InvoiceLine(sku="GLV-NIT-M", quantity=Decimal(1), unit_price=Decimal("0.10"))] * 3
    small_po = PO.model_copy(
        update={"lines": [PO.lines[0].model_copy(update={"unit_price": Decimal("0.10")})]}
    )
    bill = invoice(lines=dimes, total=Decimal("0.30"))
    assert kinds(three_way_match(bill, small_po, RECEIPT, tolerances=TOLERANCES)) == []


def test_several_exceptions_are_all_listed() -> None:
    gowns = InvoiceLine(sku="GWN-ISO-L", quantity=Decimal(5), unit_price=Decimal("31.25"))
    bill = invoice({"WCH-STD": "199.00"}, vendor="Cardinal Health", total=Decimal("1.00"))
    bill = bill.model_copy(update={"lines": [*bill.lines, gowns]})
    result = three_way_match(bill, PO, None, tolerances=TOLERANCES, seen_invoices={"INV-2024-0117"})
    assert kinds(result) == [
        "duplicate_invoice",
        "vendor_mismatch",
        "total_mismatch",
        "no_receipt",
        "over_billing",
        "line_not_on_po",
    ]


def test_documents_of_another_po_are_refused() -> None:
    with pytest.raises(MatchInputError, match="PO-2002") as raised:
        three_way_match(invoice(po_number="PO-2002"), PO, RECEIPT, tolerances=TOLERANCES)
    assert isinstance(raised.value, CareboundError) and raised.value.hint
    other = RECEIPT.model_copy(update={"po_number": "PO-2002"})
    with pytest.raises(MatchInputError):
        three_way_match(invoice(), PO, other, tolerances=TOLERANCES)


def test_tolerances_are_documented_and_validated_for_the_policy_pack() -> None:
    fields = MatchTolerances.model_fields
    assert fields["price_pct"].default == Decimal("2")
    assert fields["price_abs"].default == Decimal("1.00")
    assert all(f.description for f in fields.values())
    with pytest.raises(ValidationError):
        MatchTolerances(price_pct=Decimal("-1"))
    with pytest.raises(ValidationError):
        MatchTolerances.model_validate({"price_pct": "2", "quantity_pct": "5"})


def test_status_follows_exceptions() -> None:
    with pytest.raises(ValidationError):
        MatchResult(
            invoice_number="I",
            po_number="P",
            status="matched",
            exceptions=[MatchException(kind="no_receipt", explanation="x")],
        )
    with pytest.raises(ValidationError):
        MatchResult(invoice_number="I", po_number="P", status="exceptions")
