"""The aggregate kinds of the storefront, as the kernel knows them."""

from __future__ import annotations

from app.domain.orders import Order
from app.domain.products import Product
from app.kernel.registry import AggregateKind

PRODUCT = AggregateKind("product", Product)
ORDER = AggregateKind("order", Order)
