"""The cart as the pages show it: the orders placed from it settled first (app/adapters/cart.py).

Settling on read keeps the cart right whoever looks and whenever: the tab that placed the
order may be closed, and the next page the shopper opens empties what succeeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.adapters.cart import Lines
from app.kernel.command_status import FINAL
from app.kernel.partitions import partition_of_command

if TYPE_CHECKING:
    from app.services import Services


async def current_lines(services: Services, user: str) -> Lines:
    """The cart's lines once every order placed from it that has ended is settled."""
    lines, placed = await services.carts.snapshot(user)
    if not placed:
        return lines
    commands = list(placed)
    partitions = services.settings.partitions
    found = await services.statuses.read(
        [(partition_of_command(c, partitions), c) for c in commands]
    )
    settled = False
    for command_id, stored in zip(commands, found, strict=True):
        status = stored.view.status if stored is not None else "failed"  # expired: keep lines
        if status in FINAL:
            succeeded = status == "succeeded"
            await services.carts.settle(user, command_id, placed[command_id], succeeded=succeeded)
            settled = settled or succeeded
    return await services.carts.lines(user) if settled else lines


async def current_count(services: Services, user: str) -> int:
    """How many distinct skus the cart holds (its ended orders settled)."""
    return len(await current_lines(services, user))
