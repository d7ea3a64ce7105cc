"""Development data: three users and a small catalog, made through real commands."""

from __future__ import annotations

import logging

from app.domain.products import CreateProduct
from app.kernel.messages import Actor
from app.services import Services

log = logging.getLogger(__name__)

USERS = (
    ("admin", "admin-pass", {"admin"}, "admin@example.com"),
    ("alice", "alice-pass", {"customer"}, "alice@example.com"),
    ("bob", "bob-pass", {"customer"}, "bob@example.com"),
)
PRODUCTS = (
    ("MUG-BLUE", "Blue enamel mug", 1200, 40),
    ("MUG-RED", "Red enamel mug", 1200, 3),
    ("TEE-CQRS", "T-shirt: Commands ≠ Queries", 2500, 25),
    ("BOOK-DDD", "Domain modelling, the book", 4200, 12),
    ("STICKER-1", "Sticker: eventual consistency", 300, 500),
    ("LAMP-01", "Desk lamp", 5900, 2),
)
SEED_ACTOR = Actor(username="admin", roles=frozenset({"admin"}))


async def seed(services: Services) -> None:
    """Idempotent: users only if missing; products by commands with fixed ids."""
    for username, password, roles, email in USERS:
        if await services.users.get(username) is None:
            await services.users.create(username, password, roles, email)
    envelopes = [
        services.bus.envelope(
            CreateProduct(sku, name, price, stock), SEED_ACTOR, base_id=f"seed.{sku.lower()}"
        )
        for sku, name, price, stock in PRODUCTS
    ]
    await services.bus.execute_batch(envelopes, "inline")
    log.info("development seed: users admin/alice/bob, %d products", len(PRODUCTS))
