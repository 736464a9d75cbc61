"""The pricing library's test suite (stdlib unittest, run by the pipeline's test stage)."""

import unittest
from decimal import Decimal

from pricing import Cart, LineItem, money


class MoneyTest(unittest.TestCase):
    def test_rounds_half_up_to_the_cent(self) -> None:
        self.assertEqual(money("2.345"), Decimal("2.35"))
        self.assertEqual(money("2.344"), Decimal("2.34"))


class CartTest(unittest.TestCase):
    def setUp(self) -> None:
        self.cart = Cart()
        self.cart.add("BOOK", "12.50", 2)
        self.cart.add("PEN", "1.99", 3)

    def test_subtotal_sums_the_lines(self) -> None:
        self.assertEqual(self.cart.subtotal, Decimal("30.97"))

    def test_vat_is_charged_on_the_subtotal(self) -> None:
        self.assertEqual(self.cart.vat, Decimal("6.50"))
        self.assertEqual(self.cart.total, Decimal("37.47"))

    def test_discount_comes_off_before_vat(self) -> None:
        self.cart.discount_percent = Decimal("10")
        self.assertEqual(self.cart.discount, Decimal("3.10"))
        self.assertEqual(self.cart.vat, Decimal("5.85"))
        self.assertEqual(self.cart.total, Decimal("33.72"))

    def test_an_empty_cart_costs_nothing(self) -> None:
        self.assertEqual(Cart().total, Decimal("0.00"))


class LineItemTest(unittest.TestCase):
    def test_refuses_a_zero_quantity(self) -> None:
        with self.assertRaises(ValueError):
            LineItem("BOOK", Decimal("1"), 0)

    def test_refuses_a_negative_price(self) -> None:
        with self.assertRaises(ValueError):
            LineItem("BOOK", Decimal("-1"), 1)


if __name__ == "__main__":
    unittest.main()
