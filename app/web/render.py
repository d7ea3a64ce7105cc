"""Jinja2 rendering of the fragments that pages include, forms return and the hub pushes.

One template per fragment serves all three uses; `oob` marks a pushed copy, which the page
script swaps in by id (or inserts, for a row the page has not seen yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment
from starlette.templating import Jinja2Templates

from app.kernel.archive.status import duration, size
from app.kernel.clock import iso
from app.kernel.command_status import FINAL, CommandStatus
from app.queries.admin_status import AdminStatus
from app.queries.catalog import ProductView
from app.queries.history import History
from app.queries.notifications import Inbox
from app.queries.orders import OrderView
from app.queries.sales import LowStock, SalesDashboard
from app.web.charts import history_charts

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
CANCELLABLE = frozenset({"placed", "reserved", "paid", "confirmed"})


def money(cents: int | float | None) -> str:
    if cents is None:
        return "-"
    return f"${cents / 100:,.2f}"


def short_time(iso: str | None) -> str:
    if not iso:
        return ""
    return iso[11:19]


def clock(epoch: float | None) -> str:
    """Seconds since the epoch as a UTC date and time, to the second."""
    return (iso(epoch) or "")[:19].replace("T", " ")


def templates(*, development: bool = True) -> Jinja2Templates:
    """`development`: pages may show hints for developers (the seeded users, test cards)."""
    made = Jinja2Templates(directory=str(TEMPLATES))
    made.env.globals["development"] = development
    made.env.filters["money"] = money
    made.env.filters["short_time"] = short_time
    made.env.filters["clock"] = clock
    made.env.filters["duration"] = duration
    made.env.filters["size"] = size
    made.env.globals["CANCELLABLE"] = CANCELLABLE
    made.env.globals["STATUS_LABELS"] = STATUS_LABELS
    made.env.globals["FINAL_STATUSES"] = sorted(FINAL)
    return made


STATUS_LABELS = {
    "accepted": "Processing…",
    "processing": "Processing…",
    "succeeded": "Succeeded",
    "failed": "Failed",
}


class Renderer:
    def __init__(self, env: Environment) -> None:
        self._env = env

    def fragment(self, name: str, **context: Any) -> str:
        return self._env.get_template(f"fragments/{name}.html").render(**context)

    def product_row(self, product: ProductView, *, oob: bool = False) -> str:
        return self.fragment("product_row", p=product, oob=oob)

    def order_push(self, order: OrderView) -> str:
        """The order's list row and its detail section, each in a <template> of its own: a row
        followed by a section holding a table would not survive being parsed side by side."""
        row = self.fragment("order_row", o=order, oob=True)
        detail = self.fragment("order_detail", o=order, oob=True)
        return f"<template>{row}</template><template>{detail}</template>"

    def command_status(self, view: CommandStatus, *, oob: bool = False) -> str:
        return self.fragment("command_status", c=view, oob=oob)

    def bell(self, inbox: Inbox, *, oob: bool = False) -> str:
        return self.fragment("bell", inbox=inbox, oob=oob)

    def admin_status(self, status: AdminStatus, *, oob: bool = False) -> str:
        return self.fragment("admin_status", s=status, oob=oob)

    def admin_history(self, history: History, *, oob: bool = False) -> str:
        return self.fragment("admin_history", charts=history_charts(history), oob=oob)

    def sales(self, dashboard: SalesDashboard, low: list[LowStock], *, oob: bool = False) -> str:
        return self.fragment("sales", d=dashboard, low=low, oob=oob)
