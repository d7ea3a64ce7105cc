"""Key names of the storefront's read models (read Redis). Write-side keys: app.kernel.keys."""

from __future__ import annotations

from app.kernel.keys import read_model


def product(sku: str) -> str:
    return read_model("catalog", "product", sku)


def catalog_index() -> str:
    """Sorted set of every sku (score 0, ordered by sku) for paging."""
    return read_model("catalog", "index")


def low_stock() -> str:
    return read_model("low_stock", "skus")


def command_log_recent() -> str:
    return read_model("command_log", "recent")


def command_log_counts() -> str:
    return read_model("command_log", "counts")


def command_log_latencies() -> str:
    return read_model("command_log", "latencies")


def order(order_id: str) -> str:
    return read_model("orders", "order", order_id)


def orders_of(customer: str) -> str:
    return read_model("orders", "by_customer", customer)


def all_orders() -> str:
    return read_model("orders", "all")


def timeline(order_id: str) -> str:
    return read_model("timeline", order_id)


def sales_totals() -> str:
    return read_model("sales", "totals")


def sales_by_status() -> str:
    return read_model("sales", "by_status")


def sales_top() -> str:
    return read_model("sales", "top")


def sales_per_minute(minute: int) -> str:
    """Orders placed in one minute (`minute`: its first second, epoch); it expires."""
    return read_model("sales", "per_minute", str(minute))


def notifications(user: str) -> str:
    return read_model("notifications", "list", user)


def unread(user: str) -> str:
    return read_model("notifications", "unread", user)
