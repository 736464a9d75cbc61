"""A small pricing library: the sample project that cicd_simple.sh and cicd_pipeline.sh build."""

from pricing.cart import Cart, LineItem, money

__all__ = ["Cart", "LineItem", "money"]
