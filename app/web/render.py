"""Jinja2 rendering of the fragments that pages include, forms return and the hub pushes.

One template per fragment serves all three uses; `oob` marks a pushed copy, which the page
script swaps in by id (or inserts, for a row the page has not seen yet). The live read
models' fragments are rendered from their declarations (`Fragment` in app/web/live_models.py);
the `Renderer` serves the forms' answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment
from starlette.templating import Jinja2Templates

from app.domain.money import dollars
from app.domain.orders import CANCELLABLE, NO_REASON_GIVEN, REJECT_REASONS
from app.kernel.archive.status import duration, size
from app.kernel.clock import iso
from app.kernel.command_status import FINAL, CommandStatus
from app.kernel.messages import Problem
from app.kernel.partitions import base_of_command
from app.queries.notifications import Inbox
from app.web import live_routes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"


_ROW_PATH = re.compile(r"\$\.\w+\[(\d+)\](?:\.(\w+))?")


def money(cents: int | float | None) -> str:
    return "-" if cents is None else dollars(round(cents))


def problem_text(found: Problem) -> str:
    """A problem as one sentence: its title, and its detail unless that says the same."""
    title, detail = found.title.strip(), found.detail.strip()
    if not detail or detail.rstrip(".") == title.rstrip("."):
        return title
    if detail.lower().startswith(title.rstrip(".").lower()):
        return detail
    return f"{title}: {detail}"


def error_place(path: str) -> str:
    """Where an error is, as a person counts: `$.products[1].price_cents` is "Row 2,
    price_cents" (rows from 1, in the order given: a CSV's lines after its header, a JSON
    list's objects); `$.sku` is "sku"."""
    row = _ROW_PATH.fullmatch(path)
    if row is not None:
        field = f", {row.group(2)}" if row.group(2) else ""
        return f"Row {int(row.group(1)) + 1}{field}"
    return path.removeprefix("$.")


def behind(seconds: float) -> str:
    """A lag as time: 0.4 s, 12 s, 3.5 min."""
    return f"{seconds:.1f} s" if seconds < 10 else duration(seconds)


def reached(position: str) -> str:
    """A position (`partition:entry id`, comma-separated) as people read it: the time of the
    newest entry it covers, by the Redis clock, and in how many partitions."""
    stamps = []
    for part in position.split(","):
        _partition, _, entry = part.partition(":")
        millis = entry.partition("-")[0]
        if millis.isdigit() and int(millis):
            stamps.append(int(millis))
    if not stamps:
        return "nothing yet"
    return f"entries up to {clock(max(stamps) / 1000)} UTC"


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
    made.env.filters["behind"] = behind
    made.env.filters["reached"] = reached
    made.env.filters["size"] = size
    made.env.filters["problem_text"] = problem_text
    made.env.filters["error_place"] = error_place
    made.env.filters["command_base"] = base_of_command
    made.env.globals["CANCELLABLE"] = CANCELLABLE
    made.env.globals["REJECT_REASONS"] = REJECT_REASONS
    made.env.globals["NO_REASON_GIVEN"] = NO_REASON_GIVEN
    made.env.globals["STATUS_LABELS"] = STATUS_LABELS
    made.env.globals["FINAL_STATUSES"] = sorted(FINAL)
    live_routes.install(made.env)
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

    def command_status(self, view: CommandStatus, *, oob: bool = False) -> str:
        return self.fragment("command_status", c=view, oob=oob)

    def bell(self, inbox: Inbox, *, oob: bool = False) -> str:
        return self.fragment("bell", inbox=inbox, oob=oob)
