"""Shopping-cart totals: line items, a percentage discount, VAT, rounded to the cent."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: str | int | Decimal) -> Decimal:
    """A Decimal amount rounded half-up to the cent, as invoices are."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineItem:
    sku: str
    unit_price: Decimal
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"{self.sku}: quantity must be at least 1, not {self.quantity}")
        if self.unit_price < 0:
            raise ValueError(f"{self.sku}: a price cannot be negative")

    @property
    def subtotal(self) -> Decimal:
        return money(self.unit_price * self.quantity)


@dataclass
class Cart:
    vat_rate: Decimal = Decimal("0.21")
    discount_percent: Decimal = Decimal("0")
    items: list[LineItem] = field(default_factory=list)

    def add(self, sku: str, unit_price: str, quantity: int = 1) -> None:
        self.items.append(LineItem(sku, Decimal(unit_price), quantity))

    @property
    def subtotal(self) -> Decimal:
        return money(sum((item.subtotal for item in self.items), Decimal("0")))

    @property
    def discount(self) -> Decimal:
        return money(self.subtotal * self.discount_percent / 100)

    @property
    def vat(self) -> Decimal:
        return money((self.subtotal - self.discount) * self.vat_rate)

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.discount + self.vat
