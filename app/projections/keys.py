"""Key names of the storefront's read models (read Redis). Write-side keys: app.kernel.keys.

Every key is of one partition (`partition`: the partition of the events that write it; a key
of one aggregate — a product, an order — is in its aggregate's partition). Views that span
partitions keep one key per partition, gathered at query time (app/queries)."""

from __future__ import annotations

from app.kernel.keys import read_model


def product(partition: int, sku: str) -> str:
    return read_model("catalog", partition, "product", sku)


def catalog_index(partition: int) -> str:
    """Sorted set of the partition's skus (score 0, ordered by sku) for paging."""
    return read_model("catalog", partition, "index")


def low_stock(partition: int) -> str:
    return read_model("low_stock", partition, "skus")


def command_log_recent(partition: int) -> str:
    return read_model("command_log", partition, "recent")


def command_log_counts(partition: int) -> str:
    return read_model("command_log", partition, "counts")


def command_log_latencies(partition: int) -> str:
    return read_model("command_log", partition, "latencies")


def order(partition: int, order_id: str) -> str:
    return read_model("orders", partition, "order", order_id)


def orders_of(partition: int, customer: str) -> str:
    return read_model("orders", partition, "by_customer", customer)


def all_orders(partition: int) -> str:
    return read_model("orders", partition, "all")


def timeline(partition: int, order_id: str) -> str:
    return read_model("timeline", partition, "order", order_id)


def sales_totals(partition: int) -> str:
    return read_model("sales", partition, "totals")


def sales_by_status(partition: int) -> str:
    return read_model("sales", partition, "by_status")


def sales_top(partition: int) -> str:
    return read_model("sales", partition, "top")


def sales_per_minute(partition: int, minute: int) -> str:
    """Orders placed in one minute (`minute`: its first second, epoch); it expires."""
    return read_model("sales", partition, "per_minute", str(minute))


def notifications(partition: int, user: str) -> str:
    return read_model("notifications", partition, "list", user)


def unread(partition: int, user: str) -> str:
    return read_model("notifications", partition, "unread", user)
